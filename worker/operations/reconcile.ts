// Index reconcile: re-lists a mesh's R2 bodies (m/<mesh>/) and repairs the D1 index so it says
// what storage holds: rows added for objects it lacks, live rows
// tombstoned when their object is gone, size/etag fixed where they drifted. The index is only
// ever repaired towards storage, with guarded statements, so a reconcile racing client writes
// can neither undo a newer write nor resurrect a delete:
// - a missing row is inserted only if the path still has no row (a concurrent write or delete
//   made one, and it is newer than our listing);
// - a row is tombstoned only after a fresh HEAD confirms the body is gone, and only if it still
//   holds the etag we compared;
// - a drifted row is updated only if it still holds the etag we compared.
import type { Env } from "../env";
import { isControlClass, nameOf, parentOf } from "../lib/paths";
import type { ObjectEntry } from "../objects/object-types";
import { listControlObjects } from "../objects/control-objects";
import { entryFromR2 } from "../objects/r2-objects";
import { indexDbFor } from "../shards/mesh-index-db";

export interface ReconcileBudget {
  /** Epoch ms after which no further R2 page is started. */
  deadline: number;
  /** Most R2 list pages (1000 keys each). */
  maxPages: number;
  /** Most fresh HEADs (each a subrequest) before tombstoning; default 500. */
  maxHeads?: number;
  /** Resume an earlier incomplete run: compare only paths after this one (its resumeAfter). */
  startAfter?: string;
}

export interface ReconcileReport {
  mesh: string;
  /** R2 bodies and hub control objects looked at. */
  scanned: { r2: number; hub: number; heads: number };
  /** Rows inserted for objects the index lacked. */
  added: number;
  /** Live rows tombstoned because their object is gone. */
  tombstoned: number;
  /** Rows whose size or etag was corrected. */
  fixed: number;
  /** False when the budget ran out before every R2 page was compared. */
  complete: boolean;
  /** When incomplete: pass this as startAfter to go on where this run stopped; else null. */
  resumeAfter: string | null;
}

export const ADMIN_RECONCILE_BUDGET_MS = 20_000;
export const ADMIN_RECONCILE_MAX_PAGES = 100;

interface RowState {
  path: string;
  size: number;
  etag: string;
  version: number;
  deleted_at: number | null;
}

const PAGE = 1000;
// Index rows per comparison query: one R2 page's key range never holds more than the page, but
// a badly drifted index can hold arbitrarily many rows between two keys.
const ROWS_PER_RANGE = 5000;
const DEFAULT_MAX_HEADS = 500;

/** The index entry of a listed R2 object, or null for a key that is not a sync body clients read. */
function listedEntry(meshId: string, object: R2Object): ObjectEntry | null {
  if (!object.key.startsWith(`m/${meshId}/`)) return null;
  const entry = entryFromR2(meshId, object);
  // Control objects live in the hub; an R2 body under a control path is never what clients read.
  return isControlClass(entry.cls) ? null : entry;
}

function insertIfAbsent(db: D1Database, meshId: string, e: ObjectEntry): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO objects (mesh, path, parent, name, size, etag, modified_at, class, location, version, deleted_at)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL)
       ON CONFLICT (mesh, path) DO NOTHING`,
    )
    .bind(meshId, e.path, parentOf(e.path), nameOf(e.path), e.size, e.etag, e.modifiedAt, e.cls, e.location, e.version);
}

function fixIfUnchanged(db: D1Database, meshId: string, e: ObjectEntry, seenEtag: string): D1PreparedStatement {
  return db
    .prepare(
      `UPDATE objects SET size = ?3, etag = ?4, modified_at = ?5
       WHERE mesh = ?1 AND path = ?2 AND etag = ?6 AND deleted_at IS NULL`,
    )
    .bind(meshId, e.path, e.size, e.etag, e.modifiedAt, seenEtag);
}

/**
 * Tombstones a row whose object is gone. An R2 row is marked 'purged' at once: its body is
 * confirmed missing, so the listing window (object-index.ts) must not list it (a GET would answer
 * 404 and halt the puller) and the purge has nothing left to remove.
 */
function tombstoneIfUnchanged(db: D1Database, meshId: string, row: RowState, at: number): D1PreparedStatement {
  return db
    .prepare(
      `UPDATE objects SET deleted_at = ?3, location = 'purged'
       WHERE mesh = ?1 AND path = ?2 AND etag = ?4 AND version = ?5 AND deleted_at IS NULL`,
    )
    .bind(meshId, row.path, at, row.etag, row.version);
}

async function runCounted(db: D1Database, statements: D1PreparedStatement[]): Promise<number> {
  if (statements.length === 0) return 0;
  const results = await db.batch(statements);
  return results.reduce((n, r) => n + (r.meta.changes ?? 0), 0);
}

/** Live R2-located rows in (after, upTo], or after `after` to the end when upTo is null. */
async function rowsInRange(db: D1Database, meshId: string, after: string, upTo: string | null): Promise<RowState[]> {
  const sql =
    `SELECT path, size, etag, version, deleted_at FROM objects
     WHERE mesh = ?1 AND location = 'r2' AND path > ?2` +
    (upTo === null ? "" : " AND path <= ?3") +
    ` ORDER BY path LIMIT ${ROWS_PER_RANGE}`;
  const statement = db.prepare(sql);
  const bound = upTo === null ? statement.bind(meshId, after) : statement.bind(meshId, after, upTo);
  return (await bound.all<RowState>()).results;
}

async function reconcileR2(env: Env, meshId: string, budget: ReconcileBudget, report: ReconcileReport, now: number): Promise<void> {
  const db = indexDbFor(env, meshId);
  const prefix = `m/${meshId}/`;
  let cursor: string | undefined;
  let after = budget.startAfter ?? "";
  report.resumeAfter = after;
  for (let page = 0; page < budget.maxPages; page++) {
    if (Date.now() > budget.deadline) return;
    const listing = await env.BUCKET.list({
      prefix,
      cursor,
      // R2 takes either a cursor or startAfter; the first page of a resumed run starts after the path.
      startAfter: cursor === undefined && after !== "" ? `m/${meshId}${after}` : undefined,
      limit: PAGE,
      include: ["customMetadata"],
    });
    const listed = new Map<string, ObjectEntry>();
    for (const object of listing.objects) {
      const entry = listedEntry(meshId, object);
      if (entry !== null) listed.set(entry.path, entry);
    }
    report.scanned.r2 += listing.objects.length;
    const lastKey = listing.objects.at(-1)?.key;
    if (listing.truncated && lastKey === undefined) {
      cursor = listing.cursor;
      continue;
    }
    const upTo = listing.truncated && lastKey !== undefined ? lastKey.slice(`m/${meshId}`.length) : null;

    // Paths only: after a full range page, the next query starts past the last row seen.
    let rangeStart = after;
    const rows: RowState[] = [];
    for (let i = 0; i < 100; i++) {
      const chunk = await rowsInRange(db, meshId, rangeStart, upTo);
      rows.push(...chunk);
      if (chunk.length < ROWS_PER_RANGE) break;
      rangeStart = chunk[chunk.length - 1]!.path;
    }
    const byPath = new Map(rows.map((r) => [r.path, r]));

    const inserts: D1PreparedStatement[] = [];
    const fixes: D1PreparedStatement[] = [];
    for (const entry of listed.values()) {
      const row = byPath.get(entry.path);
      if (row === undefined) inserts.push(insertIfAbsent(db, meshId, entry));
      else if (row.deleted_at === null && (row.size !== entry.size || row.etag !== entry.etag)) {
        fixes.push(fixIfUnchanged(db, meshId, entry, row.etag));
      }
    }
    const gone: RowState[] = [];
    for (const row of rows) {
      if (row.deleted_at === null && !listed.has(row.path)) gone.push(row);
    }
    const tombstones: D1PreparedStatement[] = [];
    let outOfHeads = false;
    for (const row of gone) {
      if (report.scanned.heads >= (budget.maxHeads ?? DEFAULT_MAX_HEADS)) {
        outOfHeads = true;
        break;
      }
      report.scanned.heads++;
      // The listing is a moment ago; a write since then may have put the body back.
      if ((await env.BUCKET.head(`m/${meshId}${row.path}`)) === null) {
        tombstones.push(tombstoneIfUnchanged(db, meshId, row, now));
      }
    }
    report.added += await runCounted(db, inserts);
    report.fixed += await runCounted(db, fixes);
    report.tombstoned += await runCounted(db, tombstones);

    if (outOfHeads) return;
    if (upTo === null) {
      report.complete = true;
      report.resumeAfter = null;
      return;
    }
    after = upTo;
    report.resumeAfter = after;
    cursor = listing.truncated ? listing.cursor : undefined;
  }
}

/**
 * The hub is the only record of control objects (listings ask it), so there is nothing of them to
 * repair in the index: the hub half counts them for the report and drops this mesh's rows left
 * from when they were indexed (migration 0006), which every query already skips.
 */
async function reconcileHub(env: Env, meshId: string, report: ReconcileReport): Promise<void> {
  const [entries, dropped] = await Promise.all([
    listControlObjects(env, meshId, "/"),
    indexDbFor(env, meshId).prepare(`DELETE FROM objects WHERE mesh = ?1 AND location = 'hub'`).bind(meshId).run(),
  ]);
  report.scanned.hub += entries.length;
  report.fixed += dropped.meta.changes ?? 0;
}

/** Repairs one mesh's index against R2 and its hub; see the module comment for the guarantees. */
export async function reconcileMesh(
  env: Env,
  meshId: string,
  budget: ReconcileBudget,
  now = Date.now(),
): Promise<ReconcileReport> {
  const report: ReconcileReport = {
    mesh: meshId,
    scanned: { r2: 0, hub: 0, heads: 0 },
    added: 0,
    tombstoned: 0,
    fixed: 0,
    complete: false,
    resumeAfter: null,
  };
  await reconcileHub(env, meshId, report);
  await reconcileR2(env, meshId, budget, report, now);
  return report;
}
