// The /file operations, dispatched by path class (PROTOCOL.md section 3): change files and other
// files are R2 bodies handled here; control objects go to the hub (control-objects.ts) and
// snapshots to snapshots.ts. Listings and metadata answer from the D1 index of the R2 objects
// (filled on first use) merged with the hub's control objects, asked for in parallel.
import type { Env } from "../env";
import { readConfig } from "../lib/config";
import { HttpError, unavailable } from "../lib/errors";
import { assertDeclaredWithin, readBodyWithin, sizedBody } from "../lib/body";
import { classifyPath, descendantPrefix, isControlClass, nameOf, parentOf, type PathClass } from "../lib/paths";
import type { ControlClass } from "../../durable-objects/hub-api";
import { toFileInfo, type FileInfo, type ObjectEntry, type Precondition, type WriteOutcome } from "./object-types";
import {
  controlFolder,
  controlMetadata,
  deleteControlObjects,
  listControlSubtree,
  putControlObject,
  readControlObject,
} from "./control-objects";
import { assertSnapshotsDeletable, forgetSnapshots, putSnapshot } from "./snapshots";
import { pushInvalidation } from "./push";
import { readEvictionRecord } from "./eviction";
import { isVouched, vouchFor } from "./vouched";
import * as index from "./object-index";
import * as r2 from "./r2-objects";
import { runWithWriteTouch, touchWriteInBackground, touchWriteStatement, writeTouchIntervalMs } from "./usage";
import { indexDbFor } from "../shards/mesh-index-db";
import { sumOverShards } from "../shards/shard-maintenance";

/** D1 trouble is never the client's mistake: answer 503 so it retries (writes are idempotent). */
async function indexed<T>(work: () => Promise<T>, what: string): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof HttpError) throw err;
    console.error(JSON.stringify({ level: "error", msg: `index ${what} failed`, error: String(err) }));
    throw unavailable(`The object index is unavailable (${what}); retry.`);
  }
}

// ---------------------------------------------------------------- preconditions

function etagList(header: string): string[] {
  return header.split(",").map((t) => t.trim().replace(/^W\//, "")).filter((t) => t !== "");
}

/** RFC 9110 If-Match / If-None-Match against the current etag (null when absent): 412 on failure. */
export function checkPreconditions(pre: Precondition, current: string | null): void {
  if (pre.ifMatch !== undefined) {
    const tags = etagList(pre.ifMatch);
    const ok = current !== null && (tags.includes("*") || tags.includes(current));
    if (!ok) throw new HttpError("precondition_failed", "If-Match does not match the current object.");
  }
  if (pre.ifNoneMatch !== undefined && current !== null) {
    const tags = etagList(pre.ifNoneMatch);
    if (tags.includes("*") || tags.includes(current)) {
      throw new HttpError("precondition_failed", "If-None-Match: the object already exists.");
    }
  }
}

function hasPrecondition(pre: Precondition): boolean {
  return pre.ifMatch !== undefined || pre.ifNoneMatch !== undefined;
}

/** The R2 condition that makes a checked precondition atomic with the write. */
function r2Condition(pre: Precondition, current: R2Object | null): R2Conditional | undefined {
  if (pre.ifNoneMatch !== undefined && current === null) return { etagDoesNotMatch: "*" };
  if (pre.ifMatch !== undefined && current !== null) return { etagMatches: current.etag };
  return undefined;
}

// ---------------------------------------------------------------- writes

export interface PutContext {
  env: Env;
  ctx: ExecutionContext;
  meshId: string;
  path: string;
  request: Request;
  pre: Precondition;
}

/** PUT /file: one write by the rules of the path's class, then (if it changed anything) a push. */
export async function putFile(c: PutContext): Promise<WriteOutcome> {
  const cls = classifyPath(c.path);
  const limits = readConfig(c.env).limits;
  let outcome: WriteOutcome;
  if (isControlClass(cls)) {
    const body = await readBodyWithin(c.request, limits.control, "control object");
    outcome = await putControlObject(c.env, c.meshId, c.path, cls as ControlClass, body, c.pre);
    if (outcome.changed) touchWriteInBackground(c.env, c.ctx, c.meshId, outcome.entry.modifiedAt, writeTouchIntervalMs(readConfig(c.env)));
  } else if (cls === "snapshot") {
    outcome = await putSnapshot(c.env, c.meshId, c.path, c.request, c.pre);
  } else if (cls === "change") {
    outcome = await putChangeFile(c, limits.change);
  } else {
    outcome = await putOtherFile(c, limits.other);
  }
  // The hub queues a control object's invalidation itself, in the write's own RPC.
  if (outcome.changed && !isControlClass(cls)) {
    pushInvalidation(c.env, c.ctx, c.meshId, { op: "write", path: c.path, pathType: cls, bytes: outcome.entry.size });
  }
  return outcome;
}

/**
 * Write-once: the first bytes stay. R2's conditional put makes two concurrent first writes
 * atomic; the loser (and every retry) answers 200 and, if the first writer died between R2 and
 * the index, repairs the index. A tombstoned change file stays deleted (200): its content is
 * covered by the committed snapshot, and un-deleting it would make pullers fetch it again. The
 * tombstone is checked by the index upsert itself, which saves a D1 round trip on every flush.
 */
async function putChangeFile(c: PutContext, limit: number): Promise<WriteOutcome> {
  assertDeclaredWithin(c.request, limit, "change file");
  const db = indexDbFor(c.env, c.meshId);
  if (hasPrecondition(c.pre)) {
    const current = await r2.headSyncObject(c.env, c.meshId, c.path);
    checkPreconditions(c.pre, current?.httpEtag ?? null);
  }
  const sized = await sizedBody(c.request, limit, "change file");
  const meta = { path: c.path, cls: "change" as const, modifiedAt: Date.now() };
  const stored = await r2.putSyncObject(c.env, c.meshId, meta, sized, { onlyIf: { etagDoesNotMatch: "*" } });
  if (stored === null) {
    const existing = await r2.headSyncObject(c.env, c.meshId, c.path);
    if (existing === null) throw unavailable("The change file was deleted while it was being written; retry.");
    const entry = r2.entryFromR2(c.meshId, existing);
    // A row inserted here means no earlier attempt was acknowledged (nor pushed): push it now.
    // A tombstone is left alone (INSERT OR IGNORE), so a deleted file stays deleted.
    const repaired = await indexed(() => index.insertEntryIfAbsent(db, c.meshId, entry), "repair");
    return { status: 200, changed: repaired, entry };
  }
  const entry = r2.entryFromR2(c.meshId, stored);
  const touchEveryMs = writeTouchIntervalMs(readConfig(c.env));
  const upserted = await indexed(
    () => runWithWriteTouch(db, c.meshId, entry.modifiedAt, index.upsertUnlessDeletedStatement(db, c.meshId, entry), touchEveryMs),
    "write",
  );
  if ((upserted?.meta.changes ?? 0) === 0) {
    // Deleted and purged earlier: the body just written must not linger. GET already answers 404
    // (the tombstone wins), so a failure here only leaves an orphan for the purge to remove.
    await r2.deleteSyncObjects(c.env, c.meshId, [c.path]).catch(() => undefined);
    const row = await indexed(() => index.readRow(db, c.meshId, c.path), "read");
    return { status: 200, changed: false, entry: row ?? entry };
  }
  return { status: 201, changed: true, entry };
}

/**
 * Create 201, overwrite 204, identical repeat 200; a client precondition is made atomic by R2's
 * conditional put. "Created" and "repeat" are judged against the index, the acknowledged state:
 * a retry after an attempt whose index write failed (503, never acknowledged, never pushed) is
 * still a new write that subscribers must hear about, even though R2 already holds its bytes.
 */
async function putOtherFile(c: PutContext, limit: number): Promise<WriteOutcome> {
  assertDeclaredWithin(c.request, limit, "file");
  const [current, acknowledged] = await Promise.all([
    r2.headSyncObject(c.env, c.meshId, c.path),
    indexed(() => index.readLiveEntry(indexDbFor(c.env, c.meshId), c.meshId, c.path), "read"),
  ]);
  checkPreconditions(c.pre, current?.httpEtag ?? null);
  const sized = await sizedBody(c.request, limit, "file");
  const meta = { path: c.path, cls: "other" as const, modifiedAt: Date.now() };
  const stored = await r2.putSyncObject(c.env, c.meshId, meta, sized, { onlyIf: r2Condition(c.pre, current) });
  if (stored === null) throw new HttpError("precondition_failed", "The object changed while it was being written.");
  const entry = r2.entryFromR2(c.meshId, stored);
  await indexed(() => index.upsertEntry(indexDbFor(c.env, c.meshId), c.meshId, entry, writeTouchIntervalMs(readConfig(c.env))), "write");
  if (acknowledged === null) return { status: 201, changed: true, entry };
  // R2's etag is the content's MD5: the same etag means the same bytes, an idempotent repeat
  // that answers 200 and wakes no subscriber (PROTOCOL.md sections 3 and 6).
  if (acknowledged.etag === entry.etag) return { status: 200, changed: false, entry };
  return { status: 204, changed: true, entry };
}

// ---------------------------------------------------------------- reads

export interface FileBody {
  /** Null when only the metadata was asked for (HEAD). */
  body: ReadableStream<Uint8Array> | Uint8Array | null;
  size: number;
  etag: string | null;
  modifiedAt: number | null;
}

/**
 * GET /file: the exact bytes. A deleted object is never served, except a deleted change file
 * during its grace period (a puller may GET a name it listed just before a compaction). With
 * `body: false` (HEAD) the same answer is found from metadata alone: R2 head(), no body read.
 */
export async function readFile(env: Env, meshId: string, path: string, options: { body: boolean } = { body: true }): Promise<FileBody | null> {
  const cls = classifyPath(path);
  if (isControlClass(cls)) {
    const found = await readControlObject(env, meshId, path);
    if (found !== null) {
      return {
        body: options.body ? found.body : null,
        size: found.body.byteLength,
        etag: found.entry.etag,
        modifiedAt: found.entry.modifiedAt,
      };
    }
  } else {
    const fetchObject = options.body ? r2.getSyncObject : r2.headSyncObject;
    // A change file a listing just named needs no index check (vouched.ts says why it is safe).
    const vouched = cls === "change" && isVouched(meshId, path, Date.now(), readConfig(env).deletedChangeGraceMs);
    const [object, allowed] = await Promise.all([
      fetchObject(env, meshId, path),
      vouched ? true : indexAllowsServing(env, meshId, path, cls),
    ]);
    if (object !== null && !allowed) {
      if ("body" in object) await (object as R2ObjectBody).body.cancel();
    } else if (object !== null) {
      return {
        body: "body" in object ? (object as R2ObjectBody).body : null,
        size: object.size,
        etag: object.httpEtag,
        modifiedAt: r2.modifiedAtOf(object),
      };
    }
  }
  const record = await readEvictionRecord(env, meshId, path);
  if (record === null) return null;
  return { body: options.body ? record : null, size: record.byteLength, etag: null, modifiedAt: null };
}

/**
 * Whether the index lets an R2 body be served. Read beside the R2 GET (one D1 round trip, no added
 * latency), so GET agrees with listings and metadata: a deleted object is hidden (a body left
 * behind by a failed R2 delete, a change file past its grace but not yet purged), and so is a
 * body whose index write failed (503, the client retries) in a folder the index already holds.
 * Only a deleted change file within its grace is served on purpose. If D1 is down the body is
 * served: a failed GET would halt the puller's sync.
 */
async function indexAllowsServing(env: Env, meshId: string, path: string, cls: PathClass): Promise<boolean> {
  let row: index.IndexRow | undefined;
  let folderIndexed: boolean;
  try {
    const db = indexDbFor(env, meshId);
    const [rows, hit] = await db.batch([
      index.readRowStatement(db, meshId, path),
      index.isIndexedStatement(db, meshId, parentOf(path)),
    ]);
    row = rows ? index.rowsOf(rows)[0] : undefined;
    folderIndexed = (hit?.results.length ?? 0) > 0;
  } catch (err) {
    console.error(JSON.stringify({ level: "warn", msg: "index check for GET failed", mesh: meshId, error: String(err) }));
    return true;
  }
  if (row === undefined) return !folderIndexed;
  if (row.deletedAt === null) return true;
  return cls === "change" && Date.now() - row.deletedAt < readConfig(env).deletedChangeGraceMs;
}

/** Makes sure the index holds the folder's whole subtree of R2 objects: one R2 listing, once. */
export async function ensureIndexed(env: Env, meshId: string, folder: string): Promise<void> {
  const db = indexDbFor(env, meshId);
  if (await indexed(() => index.isIndexed(db, meshId, folder), "read")) return;
  const fromR2 = await r2.listSyncObjects(env, meshId, descendantPrefix(folder));
  const entries = fromR2.filter((e) => !isControlClass(e.cls));
  await indexed(() => index.fillFolder(db, meshId, folder, entries, Date.now()), "fill");
}

/**
 * Answers a query from the index in one D1 round trip (the indexed check rides in the same batch);
 * only when the folder was never indexed does it fill the folder and ask again.
 */
async function fromIndex(
  env: Env,
  meshId: string,
  folder: string,
  query: (db: D1Database) => D1PreparedStatement,
): Promise<D1Result> {
  const db = indexDbFor(env, meshId);
  const [hit, answer] = await indexed(() => db.batch([index.isIndexedStatement(db, meshId, folder), query(db)]), "read");
  if (hit !== undefined && answer !== undefined && hit.results.length > 0) return answer;
  await ensureIndexed(env, meshId, folder);
  return indexed(() => query(db).all(), "read");
}

/** The listing window now (PROTOCOL.md section 3, "Deleted change files"; the rule is in object-index.ts). */
function listingWindowNow(env: Env): index.ListingWindow {
  return index.listingWindow(Date.now(), readConfig(env).deletedChangeListingMs);
}

/**
 * list-files as the wire's JSON array text, sorted by name. D1 builds the R2 objects' part; the
 * hub's few control objects are spliced in. They usually sort after every change file
 * (`head.json` after `<digits>-…-chg_…json`), so the text is joined without being parsed.
 */
export async function listFilesJson(env: Env, meshId: string, folder: string): Promise<string> {
  const db = indexDbFor(env, meshId);
  const window = listingWindowNow(env);
  const query = () => indexed(() => index.listChildrenJsonStatement(db, meshId, folder, window).all(), "read");
  // Taken before the query: the listing vouches for its names as of a moment no later than its answer.
  const listedAt = Date.now();
  const [result, hub] = await Promise.all([query(), controlFolder(env, meshId, folder)]);
  let listing = index.jsonListingOf(result);
  if (!listing.indexed) {
    await ensureIndexed(env, meshId, folder);
    listing = index.jsonListingOf(await query());
  }
  vouchFor(meshId, folder, listing, listedAt);
  if (hub.files.length === 0) return listing.files;
  const extra = hub.files.sort((a, b) => compareNames(nameOfEntry(a), nameOfEntry(b))).map((e) => JSON.stringify(toFileInfo(e)));
  if (listing.last === null) return `[${extra.join(",")}]`;
  const firstExtra = nameOfEntry(hub.files[0]!);
  const lastExtra = nameOfEntry(hub.files[hub.files.length - 1]!);
  if (compareNames(firstExtra, listing.last) > 0) return `${listing.files.slice(0, -1)},${extra.join(",")}]`;
  if (listing.first !== null && compareNames(lastExtra, listing.first) < 0) return `[${extra.join(",")},${listing.files.slice(1)}`;
  const merged = [...(JSON.parse(listing.files) as FileInfo[]), ...hub.files.map(toFileInfo)];
  return JSON.stringify(merged.sort((a, b) => compareNames(a.name, b.name)));
}

export async function listFolders(env: Env, meshId: string, folder: string): Promise<string[]> {
  const window = listingWindowNow(env);
  const [result, hub] = await Promise.all([
    fromIndex(env, meshId, folder, (db) => index.childParentsStatement(db, meshId, folder, window)),
    controlFolder(env, meshId, folder),
  ]);
  const names = index.childFolderNames(folder, result);
  if (hub.folders.length === 0) return names;
  return [...new Set([...names, ...hub.folders])].sort(compareNames);
}

/** Metadata of a listed object: live, or a deleted change file inside the listing window. */
export async function fileMetadata(env: Env, meshId: string, path: string): Promise<ObjectEntry | null> {
  if (isControlClass(classifyPath(path))) return controlMetadata(env, meshId, path);
  const window = listingWindowNow(env);
  const result = await fromIndex(env, meshId, parentOf(path), (db) => index.readRowStatement(db, meshId, path));
  const row = index.rowsOf(result)[0];
  return row !== undefined && index.isListed(row, window) ? index.asListed(row) : null;
}

function nameOfEntry(entry: ObjectEntry): string {
  return nameOf(entry.path);
}

/** Code point order, which is SQLite's BINARY order of UTF-8 text: merged listings sort as D1 sorts. */
export function compareNames(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

// ---------------------------------------------------------------- deletes

/**
 * DELETE /file: `path` and everything under `path/`. Returns false when nothing existed (404).
 * Order matters: snapshots are checked before anything is touched (409 leaves all in place);
 * index tombstones commit before R2 bodies go, so a listing never names a body that is gone.
 */
export async function deleteTree(
  env: Env,
  ctx: ExecutionContext,
  meshId: string,
  path: string,
  pre: Precondition,
): Promise<boolean> {
  const db = indexDbFor(env, meshId);
  const [, fromHub] = await Promise.all([ensureIndexed(env, meshId, parentOf(path)), listControlSubtree(env, meshId, path)]);
  const inR2Index: ObjectEntry[] = await indexed(() => index.listLiveSubtree(db, meshId, path), "read");
  const targets = [...inR2Index, ...fromHub];
  let exact = targets.find((t) => t.path === path) ?? null;
  const cls = classifyPath(path);
  let orphan: ObjectEntry | null = null;
  if (exact === null && !isControlClass(cls)) {
    // An R2 body whose write never reached the index (the client saw 503) is still deletable.
    // A tombstone (a repeated DELETE of a change file in its window) is not: that answers 404.
    const row = await indexed(() => index.readRow(db, meshId, path), "read");
    if (row === null) {
      const head = await r2.headSyncObject(env, meshId, path);
      if (head !== null) {
        orphan = exact = r2.entryFromR2(meshId, head);
        targets.push(exact);
      }
    }
  }
  // A control object's precondition is checked in the hub, atomically with its delete.
  const hubChecks = isControlClass(cls) && hasPrecondition(pre);
  if (!hubChecks) checkPreconditions(pre, exact?.etag ?? null);
  if (targets.length === 0) {
    if (hubChecks) await deleteControlObjects(env, meshId, [], { path, ...pre });
    return false;
  }

  const snapshots = targets.filter((t) => t.cls === "snapshot").map((t) => t.path);
  const inHub = targets.filter((t) => t.location === "hub").map((t) => t.path);
  const inR2 = targets.filter((t) => t.location === "r2");
  if (snapshots.length > 0) await assertSnapshotsDeletable(env, meshId, snapshots);
  if (inHub.length > 0 || hubChecks) {
    await deleteControlObjects(env, meshId, inHub, hubChecks ? { path, ...pre } : undefined);
    if (inR2.length === 0) touchWriteInBackground(env, ctx, meshId, Date.now(), writeTouchIntervalMs(readConfig(env)));
  }

  const now = Date.now();
  if (inR2.length > 0) {
    const byVersion = new Map<number, string[]>();
    for (const t of inR2) byVersion.set(t.version, [...(byVersion.get(t.version) ?? []), t.path]);
    // An orphan gets its real row first, so a change file listed through its window has its size and etag.
    const statements = () => [
      ...(orphan === null ? [] : [index.insertIfAbsentStatement(db, meshId, orphan)]),
      ...[...byVersion].flatMap(([version, paths]) => index.tombstoneStatements(db, meshId, paths, now, version)),
    ];
    await indexed(() => db.batch([...statements(), touchWriteStatement(db, meshId, now)]), "delete");

    const graceMs = readConfig(env).deletedChangeGraceMs;
    const goneNow = inR2.filter((t) => !(t.cls === "change" && graceMs > 0)).map((t) => t.path);
    try {
      await r2.deleteSyncObjects(env, meshId, goneNow);
    } catch (err) {
      // The tombstones are durable, so the delete stands; purgeExpiredTombstones removes the bodies.
      console.error(JSON.stringify({ level: "warn", msg: "R2 delete failed", mesh: meshId, error: String(err) }));
    }
  }
  if (snapshots.length > 0) await forgetSnapshots(env, meshId, snapshots);
  pushInvalidation(env, ctx, meshId, { op: "delete", path, pathType: cls });
  return true;
}

// ---------------------------------------------------------------- maintenance

/** Per run: at most this many batches of tombstoned bodies, so a cron run stays bounded. */
const PURGE_BATCH = 500;
const PURGE_MAX_BATCHES = 20;
/** How long tombstone rows outlive their bodies (re-PUTs of old change files stay deleted that long). */
export const TOMBSTONE_RETENTION_MS = 30 * 24 * 60 * 60_000;

/**
 * Removes R2 bodies of tombstoned objects whose grace has run out (deleted change files served
 * during their grace, or bodies an R2 failure left behind), then drops old tombstone rows.
 * Called by the maintenance cron. Returns how many bodies were purged.
 */
export async function purgeExpiredTombstones(env: Env, now: number): Promise<number> {
  return sumOverShards(env, (db) => purgeExpiredTombstonesIn(env, db, now));
}

/** The purge on one index shard (all of it when the index is not sharded). */
async function purgeExpiredTombstonesIn(env: Env, db: D1Database, now: number): Promise<number> {
  const deletedBefore = now - readConfig(env).deletedChangeGraceMs;
  let purged = 0;
  for (let batch = 0; batch < PURGE_MAX_BATCHES; batch++) {
    const rows = await index.listPurgeableTombstones(db, deletedBefore, PURGE_BATCH);
    if (rows.length === 0) break;
    const byMesh = new Map<string, string[]>();
    for (const r of rows) byMesh.set(r.mesh, [...(byMesh.get(r.mesh) ?? []), r.path]);
    for (const [meshId, paths] of byMesh) await r2.deleteSyncObjects(env, meshId, paths);
    await db.batch(index.markPurgedStatements(db, rows));
    purged += rows.length;
    if (rows.length < PURGE_BATCH) break;
  }
  await index.dropOldTombstones(db, now - TOMBSTONE_RETENTION_MS);
  await index.dropLegacyHubRows(db, PURGE_BATCH * PURGE_MAX_BATCHES);
  return purged;
}
