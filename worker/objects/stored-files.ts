// Durable stored files (PROTOCOL.md section 4): bodies in R2 under f/<mesh>/<path>, metadata and
// counters in D1 `stored_files`, the mesh's byte total in `mesh_usage.stored_bytes`. The total is
// kept exact by computing every change inside the same D1 transaction as the row it accounts for.
import type { Env } from "../env";
import { readConfig } from "../lib/config";
import { HttpError, payloadTooLarge, unavailable } from "../lib/errors";
import { assertDeclaredWithin, sizedBody } from "../lib/body";
import { nameOf, storedFileKey } from "../lib/paths";
import { hourlyWriteStatement, readStoredUsage } from "./usage";
import { r2Call } from "./r2-objects";
import { indexDbFor } from "../shards/mesh-index-db";

export interface StoredFileMetadata {
  name: string;
  path: string;
  size: number;
  modifiedTime: string;
  etag: string;
  uploadedByDeviceId: string;
  uploadedAt: string;
  lastAccessedAt: string | null;
  useCount: number;
  plaintextSize: number | null;
  storedSize: number;
  contentType: string;
  taint: string | null;
}

/** A stored_files row as D1 holds it (also read by the mesh export). */
export interface StoredFileRow {
  path: string;
  size: number;
  etag: string;
  content_type: string;
  uploaded_by: string;
  uploaded_at: number;
  modified_at: number;
  last_accessed_at: number | null;
  use_count: number;
  plaintext_size: number | null;
  taint: string | null;
  seal_hash: string | null;
}

/** What a PUT says about the file besides its bytes (validated by the route). */
export interface StoredFileUpload {
  contentType: string;
  deviceId: string;
  plaintextSize: number | null;
  taint: string | null;
  /** 64 hex chars, lowercased, or null. */
  sealGuard: string | null;
}

const iso = (ms: number) => new Date(ms).toISOString();

function toMetadata(row: StoredFileRow): StoredFileMetadata {
  return {
    name: nameOf(row.path),
    path: row.path,
    size: row.size,
    modifiedTime: iso(row.modified_at),
    etag: row.etag,
    uploadedByDeviceId: row.uploaded_by,
    uploadedAt: iso(row.uploaded_at),
    lastAccessedAt: row.last_accessed_at === null ? null : iso(row.last_accessed_at),
    useCount: row.use_count,
    plaintextSize: row.plaintext_size,
    storedSize: row.size,
    contentType: row.content_type,
    taint: row.taint,
  };
}

async function d1<T>(work: () => Promise<T>, what: string): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof HttpError) throw err;
    console.error(JSON.stringify({ level: "error", msg: `stored files: ${what} failed`, error: String(err) }));
    throw unavailable(`Stored-file metadata is unavailable (${what}); retry.`);
  }
}

async function readRow(db: D1Database, meshId: string, path: string): Promise<StoredFileRow | null> {
  return d1(() =>
    db
      .prepare(
        `SELECT path, size, etag, content_type, uploaded_by, uploaded_at, modified_at, last_accessed_at,
                use_count, plaintext_size, taint, seal_hash
         FROM stored_files WHERE mesh = ?1 AND path = ?2`,
      )
      .bind(meshId, path)
      .first<StoredFileRow>(),
    "read",
  );
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A sealed file needs the identical guard; only digests are compared, in constant time. */
async function assertUnsealed(row: StoredFileRow, guard: string | null): Promise<void> {
  if (row.seal_hash === null) return;
  const enc = new TextEncoder();
  const offered = enc.encode(await sha256Hex(guard ?? ""));
  const stored = enc.encode(row.seal_hash);
  const same = offered.byteLength === stored.byteLength && crypto.subtle.timingSafeEqual(offered, stored);
  if (!same || guard === null) {
    throw new HttpError("forbidden", "This stored file is sealed: send the identical X-Interocitor-Seal-Guard.");
  }
}

export async function storedFileMetadata(env: Env, meshId: string, path: string): Promise<StoredFileMetadata | null> {
  const row = await readRow(indexDbFor(env, meshId), meshId, path);
  return row ? toMetadata(row) : null;
}

/** PUT: 201 new / 200 overwrite. Refuses over the per-file limit or the mesh quota (413), or a seal (403). */
export async function putStoredFile(
  env: Env,
  meshId: string,
  path: string,
  request: Request,
  upload: StoredFileUpload,
): Promise<{ status: 200 | 201; file: StoredFileMetadata }> {
  const limits = readConfig(env).limits;
  assertDeclaredWithin(request, limits.storedFile, "stored file");
  const key = storedFileKey(meshId, path);
  const existing = await readRow(indexDbFor(env, meshId), meshId, path);
  if (existing) await assertUnsealed(existing, upload.sealGuard);

  const sized = await sizedBody(request, limits.storedFile, "stored file");
  const usage = await d1(() => readStoredUsage(indexDbFor(env, meshId), meshId), "usage");
  // An overwrite is credited with the size it replaces.
  if (usage.storedBytes - (existing?.size ?? 0) + sized.length > limits.storedMeshTotal) {
    await cancel(sized.body);
    throw new HttpError(
      "payload_too_large",
      `Storing this file would exceed the mesh's stored-file quota of ${limits.storedMeshTotal} bytes (${usage.storedBytes} in use).`,
      { extra: { limit: limits.storedMeshTotal } },
    );
  }

  let stored: R2Object;
  try {
    stored = await env.BUCKET.put(key, sized.body, {
      httpMetadata: { contentType: upload.contentType },
      customMetadata: { path, device: upload.deviceId },
    });
  } catch (err) {
    const failure = sized.failure();
    if (failure) throw failure;
    console.error(JSON.stringify({ level: "error", msg: "R2 put failed (stored file)", mesh: meshId, error: String(err) }));
    throw unavailable("Storage did not accept the file; retry.");
  }

  const now = Date.now();
  const sealHash = upload.sealGuard === null ? null : await sha256Hex(upload.sealGuard);
  const db = indexDbFor(env, meshId);
  // Usage first: it reads the size the row still has inside this transaction.
  const account = () => db
    .prepare(
      `INSERT INTO mesh_usage (mesh, stored_bytes, stored_count, last_write_at) VALUES (?1, ?3, 1, ?4)
       ON CONFLICT (mesh) DO UPDATE SET
         stored_bytes = mesh_usage.stored_bytes + ?3
           - coalesce((SELECT size FROM stored_files WHERE mesh = ?1 AND path = ?2), 0),
         stored_count = mesh_usage.stored_count
           + (CASE WHEN EXISTS (SELECT 1 FROM stored_files WHERE mesh = ?1 AND path = ?2) THEN 0 ELSE 1 END),
         last_write_at = max(coalesce(mesh_usage.last_write_at, 0), ?4)`,
    )
    .bind(meshId, path, stored.size, now);
  // A seal is set by the first write only; later writes keep whatever the file had.
  const upsert = () => db
    .prepare(
      `INSERT INTO stored_files (mesh, path, name, size, etag, content_type, uploaded_by, uploaded_at, modified_at,
                                 last_accessed_at, use_count, plaintext_size, taint, seal_hash)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, NULL, 0, ?9, ?10, ?11)
       ON CONFLICT (mesh, path) DO UPDATE SET
         size = excluded.size, etag = excluded.etag, content_type = excluded.content_type,
         uploaded_by = excluded.uploaded_by, uploaded_at = excluded.uploaded_at, modified_at = excluded.modified_at,
         plaintext_size = excluded.plaintext_size, taint = excluded.taint`,
    )
    .bind(meshId, path, nameOf(path), stored.size, stored.httpEtag, upload.contentType, upload.deviceId, now,
      upload.plaintextSize, upload.taint, sealHash);
  await d1(() => db.batch([account(), upsert(), hourlyWriteStatement(db, meshId, now, stored.size)]), "write");
  const row = await readRow(db, meshId, path);
  if (row === null) throw unavailable("The stored file was deleted while it was being written; retry.");
  return { status: existing ? 200 : 201, file: toMetadata(row) };
}

async function cancel(body: ReadableStream<Uint8Array> | Uint8Array): Promise<void> {
  if (body instanceof ReadableStream) await body.cancel().catch(() => undefined);
}

/**
 * HEAD: the metadata GET would answer with, from the row and R2 head(); no body is read and no
 * read is counted (nothing was used).
 */
export async function statStoredFile(
  env: Env,
  meshId: string,
  path: string,
): Promise<{ size: number; etag: string; file: StoredFileMetadata } | null> {
  const key = storedFileKey(meshId, path);
  const row = await readRow(indexDbFor(env, meshId), meshId, path);
  if (row === null) return null;
  const object = await r2Call("head", () => env.BUCKET.head(key));
  if (object === null) return null;
  return { size: object.size, etag: object.httpEtag, file: toMetadata(row) };
}

/**
 * GET: the body with its metadata; counts the read before answering. Size and etag are the R2
 * object's own: after an overwrite whose metadata write failed (503, the client retries) they can
 * differ from the row, and the headers must describe the bytes actually sent.
 */
export async function readStoredFile(
  env: Env,
  meshId: string,
  path: string,
): Promise<{ body: ReadableStream<Uint8Array>; size: number; etag: string; file: StoredFileMetadata } | null> {
  const key = storedFileKey(meshId, path);
  const row = await readRow(indexDbFor(env, meshId), meshId, path);
  if (row === null) return null;
  const object = await r2Call("get", () => env.BUCKET.get(key));
  if (object === null) return null;
  const now = Date.now();
  await d1(() =>
    indexDbFor(env, meshId).prepare(
      `UPDATE stored_files SET use_count = use_count + 1, last_accessed_at = ?3 WHERE mesh = ?1 AND path = ?2`,
    )
      .bind(meshId, path, now)
      .run(),
    "count read",
  );
  const file = toMetadata({ ...row, use_count: row.use_count + 1, last_accessed_at: now });
  return { body: object.body, size: object.size, etag: object.httpEtag, file };
}

/** DELETE: false when absent (404); 403 on a seal without the identical guard. */
export async function deleteStoredFile(env: Env, meshId: string, path: string, guard: string | null): Promise<boolean> {
  const key = storedFileKey(meshId, path);
  const row = await readRow(indexDbFor(env, meshId), meshId, path);
  if (row === null) return false;
  await assertUnsealed(row, guard);
  const db = indexDbFor(env, meshId);
  const now = Date.now();
  const results = await d1(() =>
    db.batch([
      db
        .prepare(
          `UPDATE mesh_usage SET
             stored_bytes = stored_bytes - coalesce((SELECT size FROM stored_files WHERE mesh = ?1 AND path = ?2), 0),
             stored_count = stored_count - (CASE WHEN EXISTS (SELECT 1 FROM stored_files WHERE mesh = ?1 AND path = ?2) THEN 1 ELSE 0 END),
             last_write_at = max(coalesce(last_write_at, 0), ?3)
           WHERE mesh = ?1`,
        )
        .bind(meshId, path, now),
      db.prepare(`DELETE FROM stored_files WHERE mesh = ?1 AND path = ?2`).bind(meshId, path),
    ]),
    "delete",
  );
  if ((results[1]?.meta.changes ?? 0) === 0) return false;
  try {
    await env.BUCKET.delete(key);
  } catch (err) {
    // The row is gone, so the file is gone for every client; the body is only an orphan in R2.
    console.error(JSON.stringify({ level: "warn", msg: "R2 delete failed (stored file)", mesh: meshId, error: String(err) }));
  }
  return true;
}
