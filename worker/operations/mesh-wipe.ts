// Removing a mesh's data: R2 bodies under m/<mesh>/ and f/<mesh>/, and its D1 index, folder
// marks and stored-file rows. The hub's control state is wiped by the caller over RPC (storage
// does not talk to the hub), and mesh_usage is the caller's too: a wipe deletes it, an idle
// eviction keeps it to remember the eviction.
import { deleteHourlyStatement, forgetWriteTouch } from "../objects/usage";

export interface WipeBudget {
  /** Epoch ms after which no further R2 page is started. */
  deadline: number;
  /** Most R2 list pages (of up to 1000 keys) per prefix. */
  maxPages: number;
}

export interface WipeResult {
  r2Objects: number;
  indexRows: number;
  indexedFolders: number;
  storedFiles: number;
  /** False when the budget ran out before R2 was empty; running the wipe again finishes it. */
  complete: boolean;
}

export const DEFAULT_WIPE_BUDGET_MS = 20_000;
export const DEFAULT_WIPE_MAX_PAGES = 200;

/** Deletes every R2 object under `prefix`, one list page (at most 1000 keys) per delete call. */
async function deletePrefix(bucket: R2Bucket, prefix: string, budget: WipeBudget): Promise<{ deleted: number; complete: boolean }> {
  let deleted = 0;
  for (let page = 0; page < budget.maxPages; page++) {
    if (Date.now() > budget.deadline) return { deleted, complete: false };
    // Always list from the start: the previous page is gone, so no cursor is needed.
    const listing = await bucket.list({ prefix, limit: 1000 });
    const keys = listing.objects.map((o) => o.key);
    if (keys.length > 0) {
      await bucket.delete(keys);
      deleted += keys.length;
    }
    if (!listing.truncated) return { deleted, complete: true };
  }
  return { deleted, complete: false };
}

export async function wipeMeshData(
  bucket: R2Bucket,
  db: D1Database,
  meshId: string,
  budget: WipeBudget,
): Promise<WipeResult> {
  // R2 first: with the bodies gone, a read-through fill racing the wipe finds nothing to bring back.
  const sync = await deletePrefix(bucket, `m/${meshId}/`, budget);
  const stored = sync.complete ? await deletePrefix(bucket, `f/${meshId}/`, budget) : { deleted: 0, complete: false };
  const [objects, folders, files] = await db.batch([
    db.prepare(`DELETE FROM objects WHERE mesh = ?1`).bind(meshId),
    db.prepare(`DELETE FROM indexed_folders WHERE mesh = ?1`).bind(meshId),
    db.prepare(`DELETE FROM stored_files WHERE mesh = ?1`).bind(meshId),
  ]);
  return {
    r2Objects: sync.deleted + stored.deleted,
    indexRows: objects?.meta.changes ?? 0,
    indexedFolders: folders?.meta.changes ?? 0,
    storedFiles: files?.meta.changes ?? 0,
    complete: sync.complete && stored.complete,
  };
}

/** Deletes the mesh's usage row and hourly counters (an admin wipe forgets the mesh entirely). */
export async function deleteMeshUsage(db: D1Database, meshId: string): Promise<void> {
  await db.batch([db.prepare(`DELETE FROM mesh_usage WHERE mesh = ?1`).bind(meshId), deleteHourlyStatement(db, meshId)]);
  forgetWriteTouch(meshId);
}

const MAX_ROOTS = 100;

/**
 * The top-level folders ("remote roots", e.g. "/MyApp") that hold anything in the mesh, from the
 * index, the stored files and R2 itself (a folder never listed may have no index rows yet), and
 * `controlPaths`: the paths of the hub's control objects, which the caller reads over RPC.
 */
export async function listMeshRoots(
  bucket: R2Bucket,
  db: D1Database,
  meshId: string,
  controlPaths: readonly string[] = [],
): Promise<string[]> {
  const roots = new Set<string>();
  for (const path of controlPaths) {
    const slash = path.indexOf("/", 1);
    if (slash > 0) roots.add(path.slice(0, slash));
  }
  const rootSql = (table: string, live: string) =>
    `SELECT DISTINCT substr(path, 1, instr(substr(path, 2), '/')) AS root FROM ${table}
     WHERE mesh = ?1 ${live} AND instr(substr(path, 2), '/') > 0 LIMIT ${MAX_ROOTS}`;
  const [indexed, stored] = await db.batch<{ root: string }>([
    db.prepare(rootSql("objects", "AND deleted_at IS NULL")).bind(meshId),
    db.prepare(rootSql("stored_files", "")).bind(meshId),
  ]);
  for (const row of [...(indexed?.results ?? []), ...(stored?.results ?? [])]) roots.add(row.root);
  const prefix = `m/${meshId}/`;
  const listing = await bucket.list({ prefix, delimiter: "/", limit: 1000 });
  for (const folder of listing.delimitedPrefixes) roots.add(`/${folder.slice(prefix.length, -1)}`);
  return [...roots].sort().slice(0, MAX_ROOTS);
}
