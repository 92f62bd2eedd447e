// D1 read-through index of a mesh's R2 objects. It answers list-files, list-folders and metadata
// without listing R2 (the hub's control objects are merged in by files.ts). Writes upsert and
// deletes tombstone, so the index is never stale after an acknowledged write or delete; a folder
// that was never indexed is filled once from R2 (fillFolder), with INSERT OR IGNORE so a fill
// racing a write or delete can neither overwrite the newer row nor resurrect a tombstone.
// Rows with location 'hub' are left from before control objects stopped being indexed here:
// every query skips them and the maintenance cron drops them (dropLegacyHubRows).
import { classifyPath, isControlClass, nameOf, parentOf, type PathClass } from "../lib/paths";
import type { FileInfo, ObjectEntry, ObjectLocation } from "./object-types";
import { NOT_MOVED } from "../shards/shard-bindings";
import { RETURNING_LAST_WRITE, runWithWriteTouch, touchWriteStatement } from "./usage";

/** An index row, live or tombstoned. */
export interface IndexRow extends ObjectEntry {
  /** Epoch ms of the delete, or null while live. */
  deletedAt: number | null;
}

interface RawRow {
  path: string;
  size: number;
  etag: string;
  modified_at: number;
  class: string;
  location: string;
  version: number;
  deleted_at: number | null;
}

const COLUMNS = "path, size, etag, modified_at, class, location, version, deleted_at";

function fromRaw(row: RawRow): IndexRow {
  return {
    path: row.path,
    size: row.size,
    etag: row.etag,
    modifiedAt: row.modified_at,
    cls: row.class as PathClass,
    location: row.location as ObjectLocation,
    version: row.version,
    deletedAt: row.deleted_at,
  };
}

/** Rows per INSERT ... SELECT FROM json_each(?): keeps every statement far below D1's size limits. */
const ROWS_PER_STATEMENT = 200;

function chunked<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Descendants of a folder `F` are exactly the paths in ["F/", "F0"): '0' sorts right after '/'. */
export function subtreeRange(folder: string): [string, string] {
  return folder === "/" ? ["/", "0"] : [`${folder}/`, `${folder}0`];
}

/** Every ancestor folder of a normalized path, the path itself included, root first. */
export function selfAndAncestors(folder: string): string[] {
  const out = ["/"];
  if (folder === "/") return out;
  let at = 0;
  for (;;) {
    const next = folder.indexOf("/", at + 1);
    if (next === -1) break;
    out.push(folder.slice(0, next));
    at = next;
  }
  out.push(folder);
  return out;
}

/**
 * The upsert statement for one live entry. The WHERE clause makes it conditional: a hub entry
 * whose write was reordered behind a newer write or delete of the same path leaves the row alone.
 */
export function upsertStatement(db: D1Database, meshId: string, entry: ObjectEntry): D1PreparedStatement {
  return upsertWith(db, meshId, entry, "revive");
}

/**
 * Like upsertStatement, but a tombstone wins: a deleted change file stays deleted (its content is
 * covered by the committed snapshot). `meta.changes` is 0 exactly when a tombstone was kept.
 */
export function upsertUnlessDeletedStatement(db: D1Database, meshId: string, entry: ObjectEntry): D1PreparedStatement {
  return upsertWith(db, meshId, entry, "keep");
}

function upsertWith(db: D1Database, meshId: string, entry: ObjectEntry, tombstone: "revive" | "keep"): D1PreparedStatement {
  const update =
    tombstone === "revive"
      ? "deleted_at = NULL WHERE excluded.version >= objects.version"
      : "deleted_at = objects.deleted_at WHERE objects.deleted_at IS NULL AND excluded.version >= objects.version";
  return db
    .prepare(
      `INSERT INTO objects (mesh, path, parent, name, size, etag, modified_at, class, location, version, deleted_at)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL)
       ON CONFLICT (mesh, path) DO UPDATE SET
         size = excluded.size, etag = excluded.etag, modified_at = excluded.modified_at,
         class = excluded.class, location = excluded.location, version = excluded.version,
         ${update}
       ${RETURNING_LAST_WRITE}`,
    )
    .bind(
      meshId,
      entry.path,
      parentOf(entry.path),
      nameOf(entry.path),
      entry.size,
      entry.etag,
      entry.modifiedAt,
      entry.cls,
      entry.location,
      entry.version,
    );
}

/** Inserts or replaces a live entry (clears any tombstone). Never moves a hub entry to an older version. */
export async function upsertEntry(db: D1Database, meshId: string, entry: ObjectEntry, touchEveryMs = 0): Promise<void> {
  // One round trip: the index row and (when due) the mesh's last write time commit together.
  await runWithWriteTouch(db, meshId, entry.modifiedAt, upsertStatement(db, meshId, entry), touchEveryMs);
}

/**
 * Tombstone statements for the given paths. A path the index has never seen still gets a
 * tombstone row, so a read-through fill that listed the object before it was deleted cannot
 * bring it back. An existing tombstone keeps its first deletion time (the grace clock).
 */
export function tombstoneStatements(
  db: D1Database,
  meshId: string,
  paths: readonly string[],
  at: number,
  version = 0,
): D1PreparedStatement[] {
  return chunked(paths, ROWS_PER_STATEMENT).map((chunk) => {
    const rows = chunk.map((path) => {
      const cls = classifyPath(path);
      return { p: path, d: parentOf(path), n: nameOf(path), c: cls, l: isControlClass(cls) ? "hub" : "r2" };
    });
    return db
      .prepare(
        `INSERT INTO objects (mesh, path, parent, name, size, etag, modified_at, class, location, version, deleted_at)
         SELECT ?1, json_extract(value, '$.p'), json_extract(value, '$.d'), json_extract(value, '$.n'),
                0, '""', ?2, json_extract(value, '$.c'), json_extract(value, '$.l'), ?3, ?2
         FROM json_each(?4) WHERE true
         ON CONFLICT (mesh, path) DO UPDATE SET
           deleted_at = coalesce(objects.deleted_at, excluded.deleted_at),
           version = max(objects.version, excluded.version)
         WHERE excluded.version >= objects.version`,
      )
      .bind(meshId, at, version, JSON.stringify(rows));
  });
}

/** Marks entries deleted at `at` (epoch ms), recording the write in the same round trip. */
export async function tombstoneEntries(
  db: D1Database,
  meshId: string,
  paths: readonly string[],
  at: number,
  version = 0,
): Promise<void> {
  if (paths.length === 0) return;
  await db.batch([...tombstoneStatements(db, meshId, paths, at, version), touchWriteStatement(db, meshId, at)]);
}

/** Rows of a statement built by one of the *Statement functions below. */
export function rowsOf(result: D1Result): IndexRow[] {
  return (result.results as RawRow[]).map(fromRaw);
}

export function readRowStatement(db: D1Database, meshId: string, path: string): D1PreparedStatement {
  return db.prepare(`SELECT ${COLUMNS} FROM objects WHERE mesh = ?1 AND path = ?2`).bind(meshId, path);
}

/** One row by exact path, live or tombstoned. */
export async function readRow(db: D1Database, meshId: string, path: string): Promise<IndexRow | null> {
  const row = await readRowStatement(db, meshId, path).first<RawRow>();
  return row ? fromRaw(row) : null;
}

/** A live entry by exact path, or null. */
export async function readLiveEntry(db: D1Database, meshId: string, path: string): Promise<IndexRow | null> {
  const row = await readRow(db, meshId, path);
  return row && row.deletedAt === null ? row : null;
}

// ---------------------------------------------------------------- the listing window
// PROTOCOL.md section 3, "Deleted change files": a deleted change file stays listed (list-files,
// list-folders, metadata) for the listing window, described as deleted at its deletion time, so
// a connected device that has not pulled it yet, and a device about to compact, still merge it.
// Everything that decides "is this row listed" lives here, in SQL (listedWhere) and in code
// (isListed) that say the same thing; any other index layout must keep both. A row is listed when
// - it is live, or
// - it is a change file deleted less than the window ago whose body is still in R2 (location
//   'r2': not purged, not found missing by reconcile), so every listed name can be read by GET.

/** The listing window at one moment: tombstones of change files deleted after `deletedAfter` are listed. */
export interface ListingWindow {
  deletedAfter: number;
}

/** A window of 0 lists no tombstone at all (not even one deleted in this very millisecond). */
export function listingWindow(now: number, listingMs: number): ListingWindow {
  return { deletedAfter: listingMs > 0 ? now - listingMs : Number.MAX_SAFE_INTEGER };
}

/** The SQL condition for a listed row; `param` is the placeholder bound to window.deletedAfter. */
function listedWhere(param: string): string {
  return `location <> 'hub' AND (deleted_at IS NULL OR (class = 'change' AND location = 'r2' AND deleted_at > ${param}))`;
}

/** isListed in code: the same rule as listedWhere, for a row read by exact path. */
export function isListed(row: IndexRow, window: ListingWindow): boolean {
  if (row.location === "hub") return false;
  if (row.deletedAt === null) return true;
  return row.cls === "change" && row.location === "r2" && row.deletedAt > window.deletedAfter;
}

/** A listed row as listings describe it: a deleted change file shows its deletion time. */
export function asListed(row: IndexRow): IndexRow {
  return row.deletedAt === null ? row : { ...row, modifiedAt: row.deletedAt };
}

/** A row when mesh ?1 indexed the folder or an ancestor; `foldersParam` binds them as a JSON array (selfAndAncestors). */
function indexedHit(foldersParam: string): string {
  return `SELECT 1 AS hit FROM indexed_folders WHERE mesh = ?1 AND folder IN (SELECT value FROM json_each(${foldersParam})) LIMIT 1`;
}

/**
 * A folder's listed direct children as the wire's JSON array (PROTOCOL.md list-files: name, path,
 * size, modifiedTime, etag), joined from each row's stored entry (`listed_json`), so neither D1
 * nor the Worker builds 1,000 objects per read; with the first and last names, so a few entries
 * from elsewhere can be spliced in without parsing. `indexed` says whether the index holds the
 * folder, in the same statement: one D1 round trip and no batch on the hot path.
 *
 * The rows are read as one run of the primary key (mesh, parent, name), already in name order
 * (migration 0008): the inner ORDER BY costs no sort, and it is what orders the join (an
 * aggregate's own ORDER BY would sort again). The listing tests pin the order and the plan.
 */
export const LIST_CHILDREN_SQL = `SELECT '[' || group_concat(listed_json, ',') || ']' AS files,
         min(name) AS first, max(name) AS last,
         json_group_array(name) FILTER (WHERE deleted_at IS NOT NULL) AS deleted,
         (${indexedHit("?4")}) AS indexed
  FROM (SELECT name, listed_json, deleted_at FROM objects
        WHERE mesh = ?1 AND parent = ?2 AND ${listedWhere("?3")} ORDER BY name)`;

export function listChildrenJsonStatement(db: D1Database, meshId: string, folder: string, window: ListingWindow): D1PreparedStatement {
  return db.prepare(LIST_CHILDREN_SQL).bind(meshId, folder, window.deletedAfter, JSON.stringify(selfAndAncestors(folder)));
}

/** A listing as JSON text: the array, its first and last names (null when it is empty), and the names of its deleted change files. */
export interface JsonListing {
  files: string;
  first: string | null;
  last: string | null;
  /** The listed change files that are deleted (within their listing window), as a JSON array; usually `[]`. */
  deleted: string;
  /** False when the folder was never indexed: the listing must be filled from R2 and asked again. */
  indexed: boolean;
}

export function jsonListingOf(result: D1Result): JsonListing {
  const row = result.results[0] as
    | { files: string | null; first: string | null; last: string | null; deleted: string | null; indexed: number | null }
    | undefined;
  return {
    files: row?.files ?? "[]",
    first: row?.first ?? null,
    last: row?.last ?? null,
    deleted: row?.deleted ?? "[]",
    indexed: row?.indexed === 1,
  };
}

/** Listed direct children of a folder as the wire describes them, sorted by name. */
export async function listChildren(db: D1Database, meshId: string, folder: string, window: ListingWindow): Promise<FileInfo[]> {
  return JSON.parse(jsonListingOf(await listChildrenJsonStatement(db, meshId, folder, window).all()).files) as FileInfo[];
}

export function childParentsStatement(db: D1Database, meshId: string, folder: string, window: ListingWindow): D1PreparedStatement {
  const [from, to] = subtreeRange(folder);
  return db
    .prepare(
      `SELECT DISTINCT parent FROM objects
       WHERE mesh = ?1 AND parent >= ?2 AND parent < ?3 AND ${listedWhere("?4")}`,
    )
    .bind(meshId, from, to, window.deletedAfter);
}

/** Names of the folders directly under `folder` that hold at least one listed object, sorted. */
export async function listChildFolders(db: D1Database, meshId: string, folder: string, window: ListingWindow): Promise<string[]> {
  return childFolderNames(folder, await childParentsStatement(db, meshId, folder, window).all());
}

// ---------------------------------------------------------------- subtrees and fills

/** Folder names from the result of childParentsStatement. */
export function childFolderNames(folder: string, result: D1Result): string[] {
  const [from] = subtreeRange(folder);
  const names = new Set<string>();
  for (const { parent } of result.results as { parent: string }[]) {
    const rest = parent.slice(from.length);
    const slash = rest.indexOf("/");
    const name = slash === -1 ? rest : rest.slice(0, slash);
    if (name !== "") names.add(name);
  }
  return [...names].sort();
}

/**
 * The live entry at `path` and every live entry under `path/`. One range of objects_by_path,
 * [path, end of its subtree), filtered: written as `path = ? OR <range>`, SQLite walked every row
 * of the mesh, and every DELETE (a compaction sends one per change file) paid for it.
 */
export const LIVE_SUBTREE_SQL = `SELECT ${COLUMNS} FROM objects
  WHERE mesh = ?1 AND path >= ?2 AND path < ?4 AND (path = ?2 OR path >= ?3) AND deleted_at IS NULL AND location <> 'hub'`;

export async function listLiveSubtree(db: D1Database, meshId: string, path: string): Promise<IndexRow[]> {
  const [from, to] = subtreeRange(path);
  const { results } = await db.prepare(LIVE_SUBTREE_SQL).bind(meshId, path, from, to).all<RawRow>();
  return results.map(fromRaw);
}

/** One row when the folder or one of its ancestors is marked as completely indexed, else none. */
export function isIndexedStatement(db: D1Database, meshId: string, folder: string): D1PreparedStatement {
  return db.prepare(indexedHit("?2")).bind(meshId, JSON.stringify(selfAndAncestors(folder)));
}

export async function isIndexed(db: D1Database, meshId: string, folder: string): Promise<boolean> {
  return (await isIndexedStatement(db, meshId, folder).all()).results.length > 0;
}

/**
 * Fills the index for a folder's subtree from a complete listing of it, then marks the folder.
 * INSERT OR IGNORE: rows written (or tombstoned) since the listing was taken are newer and win.
 */
export async function fillFolder(
  db: D1Database,
  meshId: string,
  folder: string,
  entries: readonly ObjectEntry[],
  now: number,
): Promise<void> {
  const statements = chunked(entries, ROWS_PER_STATEMENT).map((chunk) => {
    const rows = chunk.map((e) => ({
      p: e.path,
      d: parentOf(e.path),
      n: nameOf(e.path),
      s: e.size,
      e: e.etag,
      m: e.modifiedAt,
      c: e.cls,
      l: e.location,
      v: e.version,
    }));
    return db
      .prepare(
        `INSERT OR IGNORE INTO objects (mesh, path, parent, name, size, etag, modified_at, class, location, version, deleted_at)
         SELECT ?1, json_extract(value, '$.p'), json_extract(value, '$.d'), json_extract(value, '$.n'),
                json_extract(value, '$.s'), json_extract(value, '$.e'), json_extract(value, '$.m'),
                json_extract(value, '$.c'), json_extract(value, '$.l'), json_extract(value, '$.v'), NULL
         FROM json_each(?2)`,
      )
      .bind(meshId, JSON.stringify(rows));
  });
  statements.push(
    db.prepare(`INSERT OR IGNORE INTO indexed_folders (mesh, folder, indexed_at) VALUES (?1, ?2, ?3)`).bind(meshId, folder, now),
  );
  await db.batch(statements);
}

export function insertIfAbsentStatement(db: D1Database, meshId: string, entry: ObjectEntry): D1PreparedStatement {
  return db
    .prepare(
      `INSERT OR IGNORE INTO objects (mesh, path, parent, name, size, etag, modified_at, class, location, version, deleted_at)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL)`,
    )
    .bind(meshId, entry.path, parentOf(entry.path), nameOf(entry.path), entry.size, entry.etag, entry.modifiedAt, entry.cls, entry.location, entry.version);
}

/** Inserts an entry only if the index has no row for its path (repairs without resurrecting). */
export async function insertEntryIfAbsent(db: D1Database, meshId: string, entry: ObjectEntry): Promise<boolean> {
  const result = await insertIfAbsentStatement(db, meshId, entry).run();
  return (result.meta.changes ?? 0) > 0;
}

/** Tombstones whose R2 body may still exist and whose grace has run out, oldest first. */
export async function listPurgeableTombstones(
  db: D1Database,
  deletedBefore: number,
  limit: number,
): Promise<{ mesh: string; path: string }[]> {
  const { results } = await db
    .prepare(
      `SELECT mesh, path FROM objects
       WHERE deleted_at IS NOT NULL AND deleted_at < ?1 AND location = 'r2' AND ${NOT_MOVED}
       ORDER BY deleted_at LIMIT ?2`,
    )
    .bind(deletedBefore, limit)
    .all<{ mesh: string; path: string }>();
  return results;
}

/**
 * Records that a tombstone's R2 body is gone, so the purge does not revisit it. The row itself
 * stays for the retention: it keeps a re-PUT of the same change file deleted (its content is
 * covered by the committed snapshot) and keeps read-through fills from resurrecting it.
 */
export function markPurgedStatements(db: D1Database, rows: readonly { mesh: string; path: string }[]): D1PreparedStatement[] {
  return chunked(rows, ROWS_PER_STATEMENT).map((chunk) =>
    db
      .prepare(
        `UPDATE objects SET location = 'purged'
         WHERE deleted_at IS NOT NULL AND location = 'r2'
           AND (mesh, path) IN (SELECT json_extract(value, '$.m'), json_extract(value, '$.p') FROM json_each(?1))`,
      )
      .bind(JSON.stringify(chunk.map((r) => ({ m: r.mesh, p: r.path })))),
  );
}

/** Drops tombstones older than the retention whose bodies are gone. */
export async function dropOldTombstones(db: D1Database, deletedBefore: number): Promise<number> {
  const result = await db
    .prepare(`DELETE FROM objects WHERE deleted_at IS NOT NULL AND deleted_at < ?1 AND location <> 'r2' AND ${NOT_MOVED}`)
    .bind(deletedBefore)
    .run();
  return result.meta.changes ?? 0;
}

/** Drops up to `limit` rows left from when control objects were indexed here (migration 0006). */
export async function dropLegacyHubRows(db: D1Database, limit: number): Promise<number> {
  const result = await db
    .prepare(`DELETE FROM objects WHERE (mesh, path) IN (SELECT mesh, path FROM objects WHERE location = 'hub' AND ${NOT_MOVED} LIMIT ?1)`)
    .bind(limit)
    .run();
  return result.meta.changes ?? 0;
}
