// Small factories for the IO route tests: a fresh mesh per test and typed calls to its routes.
import { env, SELF } from "cloudflare:test";
import { indexDbFor } from "../../worker/shards/mesh-index-db";
import { isSharded, shardBinding, shardDb } from "../../worker/shards/shard-bindings";
import { shardForWrite } from "../../worker/shards/shard-directory";
import type { Env } from "../../worker/env";

export const ORIGIN = "http://meshbox.test";

export function newMesh(): string {
  return `mesh_${crypto.randomUUID()}`;
}

export function ioUrl(mesh: string, route: string, path?: string): string {
  const url = new URL(`${ORIGIN}/sync/io/${mesh}/${route}`);
  if (path !== undefined) url.searchParams.set("path", path);
  return url.toString();
}

export function putFile(mesh: string, path: string, body: BodyInit | null, headers: HeadersInit = {}): Promise<Response> {
  return SELF.fetch(ioUrl(mesh, "file", path), { method: "PUT", body, headers });
}

export function getFile(mesh: string, path: string): Promise<Response> {
  return SELF.fetch(ioUrl(mesh, "file", path));
}

export function deleteFile(mesh: string, path: string, headers: HeadersInit = {}): Promise<Response> {
  return SELF.fetch(ioUrl(mesh, "file", path), { method: "DELETE", headers });
}

export function post(mesh: string, route: string, body: unknown): Promise<Response> {
  return SELF.fetch(ioUrl(mesh, route), {
    method: "POST",
    body: typeof body === "string" ? body : JSON.stringify(body),
    headers: { "Content-Type": "application/json" },
  });
}

export async function listNames(mesh: string, folder: string): Promise<string[]> {
  const res = await post(mesh, "list-files", { path: folder });
  const body = (await res.json()) as { files: { name: string }[] };
  return body.files.map((f) => f.name);
}

/** A valid change-file name: <15-digit ms>-<4 hex>-<deviceId>-chg_<id>.json. */
export function changeName(n: number, device = "devA"): string {
  return `${String(1_700_000_000_000 + n).padStart(15, "0")}-000${n % 10}-${device}-chg_${crypto.randomUUID()}.json`;
}

/** A body stream with no declared length (chunked upload). */
export function chunked(bytes: Uint8Array, chunkSize = 64 * 1024): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.byteLength) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.slice(offset, offset + chunkSize));
      offset += chunkSize;
    },
  });
}

export async function r2Keys(prefix: string): Promise<string[]> {
  const listed = await env.BUCKET.list({ prefix });
  return listed.objects.map((o) => o.key);
}

/**
 * The database holding `mesh`'s per-mesh rows (objects, indexed_folders, stored_files, mesh_usage,
 * mesh_hourly): DB in the "workers" project, the mesh's index shard in "workers-shards".
 */
export function meshDb(mesh: string): D1Database {
  return indexDbFor(env, mesh);
}

/**
 * The real binding that holds `mesh`'s index rows, for fault injection: DB, or (sharded) the
 * mesh's shard, placing the mesh first so the faulty binding is the one its queries will use.
 */
export async function indexBinding(mesh: string): Promise<{ name: string; db: D1Database }> {
  if (!isSharded(env)) return { name: "DB", db: env.DB };
  const shard = await shardForWrite(env, mesh);
  return { name: shardBinding(shard), db: shardDb(env, shard) };
}

/** The env override that puts `db` (a wrapped index binding) where `mesh`'s index rows are. */
export async function indexOverride(mesh: string, db: D1Database): Promise<Partial<Env>> {
  return { [(await indexBinding(mesh)).name]: db } as Partial<Env>;
}

export async function indexRows(mesh: string): Promise<{ path: string; deleted_at: number | null }[]> {
  const { results } = await meshDb(mesh).prepare("SELECT path, deleted_at FROM objects WHERE mesh = ? ORDER BY path")
    .bind(mesh)
    .all<{ path: string; deleted_at: number | null }>();
  return results;
}

export const bytes = (text: string) => new TextEncoder().encode(text);

/** Pseudo-random bytes of any length (getRandomValues takes at most 64 KiB at a time). */
export function randomBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += 65_536) crypto.getRandomValues(out.subarray(i, Math.min(length, i + 65_536)));
  return out;
}

/** A response body as text, whatever its Content-Type (bodies are opaque bytes here). */
export async function textOf(res: Response): Promise<string> {
  return new TextDecoder().decode(await res.arrayBuffer());
}
