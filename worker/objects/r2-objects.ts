// Sync-object bodies in R2 under m/<mesh>/<path>. Every object carries custom metadata (path,
// class, modified ms) so the index can be rebuilt from R2 alone.
import type { Env } from "../env";
import { HttpError, unavailable } from "../lib/errors";
import { classifyPath, objectKey, type PathClass } from "../lib/paths";
import type { SizedBody } from "../lib/body";
import type { ObjectEntry } from "./object-types";

/** R2 trouble is never the client's mistake: 503, so the client retries. */
export async function r2Call<T>(what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof HttpError) throw err;
    console.error(JSON.stringify({ level: "error", msg: `R2 ${what} failed`, error: String(err) }));
    throw unavailable(`Storage is unavailable (${what}); retry.`);
  }
}

/** Every sync object is stored and served as opaque bytes. */
export const SYNC_OBJECT_CONTENT_TYPE = "application/octet-stream";

/** Custom metadata written on every sync object. */
export interface SyncObjectMeta {
  path: string;
  cls: PathClass;
  modifiedAt: number;
}

/** The custom metadata every sync object carries: enough to rebuild its index row from R2 alone. */
export function toCustomMetadata(meta: SyncObjectMeta, writeId: string): Record<string, string> {
  return { path: meta.path, class: meta.cls, modified: String(meta.modifiedAt), write: writeId };
}

/** When the object's writer stored it (the custom metadata), else when R2 did. */
export function modifiedAtOf(object: R2Object): number {
  const modified = Number(object.customMetadata?.modified);
  return Number.isFinite(modified) && modified > 0 ? modified : object.uploaded.getTime();
}

/** The index entry an R2 object stands for; the path comes from the key, which cannot lie. */
export function entryFromR2(meshId: string, object: R2Object): ObjectEntry {
  const path = object.key.slice(objectKey(meshId, "").length);
  return {
    path,
    size: object.size,
    etag: object.httpEtag,
    modifiedAt: modifiedAtOf(object),
    cls: classifyPath(path),
    location: "r2",
    version: 0,
  };
}

/**
 * Stores a body. Returns null when `onlyIf` did not hold. A body the client got wrong (over the
 * limit, not its declared length) is its 4xx. When R2's answer is lost, the write id in the
 * custom metadata tells whether this very write landed: if so it counts as stored (so the caller
 * indexes it and nothing is GETtable yet unlisted); otherwise 503 and the client retries.
 */
export async function putSyncObject(
  env: Env,
  meshId: string,
  meta: SyncObjectMeta,
  sized: SizedBody,
  options: { onlyIf?: R2Conditional },
): Promise<R2Object | null> {
  const key = objectKey(meshId, meta.path);
  const writeId = crypto.randomUUID();
  try {
    return await env.BUCKET.put(key, sized.body, {
      onlyIf: options.onlyIf,
      customMetadata: toCustomMetadata(meta, writeId),
      // Sync objects are ciphertext whatever the writer declared (PROTOCOL.md section 2).
      httpMetadata: { contentType: SYNC_OBJECT_CONTENT_TYPE },
    });
  } catch (err) {
    if (err instanceof HttpError) throw err;
    const failure = sized.failure();
    if (failure) throw failure;
    console.error(JSON.stringify({ level: "error", msg: "R2 put failed", mesh: meshId, error: String(err) }));
    const landed = await Promise.resolve()
      .then(() => env.BUCKET.head(key))
      .catch(() => null);
    if (landed !== null && landed.customMetadata?.write === writeId) return landed;
    throw unavailable("Storage did not accept the write; retry.");
  }
}

export async function headSyncObject(env: Env, meshId: string, path: string): Promise<R2Object | null> {
  const key = objectKey(meshId, path);
  return r2Call("head", () => env.BUCKET.head(key));
}

export async function getSyncObject(env: Env, meshId: string, path: string): Promise<R2ObjectBody | null> {
  const key = objectKey(meshId, path);
  return r2Call("get", () => env.BUCKET.get(key));
}

/** R2 deletes at most 1000 keys per call. */
const DELETE_BATCH = 1000;

export async function deleteSyncObjects(env: Env, meshId: string, paths: readonly string[]): Promise<void> {
  for (let i = 0; i < paths.length; i += DELETE_BATCH) {
    const keys = paths.slice(i, i + DELETE_BATCH).map((p) => objectKey(meshId, p));
    await r2Call("delete", () => env.BUCKET.delete(keys));
  }
}

/** Bounds one read-through fill: 10,000 pages of up to 1,000 objects. */
const MAX_LIST_PAGES = 10_000;

/** Every R2 object at `prefix` (a path prefix, e.g. "/R/changes/"), all pages, no delimiter. */
export async function listSyncObjects(env: Env, meshId: string, prefix: string): Promise<ObjectEntry[]> {
  const keyPrefix = objectKey(meshId, prefix);
  const out: ObjectEntry[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_LIST_PAGES; page++) {
    const listed = await r2Call("list", () => env.BUCKET.list({ prefix: keyPrefix, cursor, include: ["customMetadata"] }));
    for (const object of listed.objects) out.push(entryFromR2(meshId, object));
    if (!listed.truncated) return out;
    cursor = listed.cursor;
  }
  throw unavailable("The folder is too large to index in one request; retry.");
}
