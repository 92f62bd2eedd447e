// Per-mesh usage in D1 (mesh_usage): last write/read times for stats and idle cleanup, and the
// stored-file byte and file counts that the quota is checked against.
import type { Env } from "../env";

/** Batched with every index write, so recording the write costs no extra round trip. */
export function touchWriteStatement(db: D1Database, meshId: string, at: number): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO mesh_usage (mesh, last_write_at) VALUES (?1, ?2)
       ON CONFLICT (mesh) DO UPDATE SET last_write_at = max(coalesce(mesh_usage.last_write_at, 0), excluded.last_write_at)`,
    )
    .bind(meshId, at);
}

/** Reads are frequent and the field is only for stats and idle cleanup: one write a minute per isolate is plenty. */
const READ_TOUCH_INTERVAL_MS = 60_000;
const MAX_TRACKED_MESHES = 10_000;
const lastReadTouch = new Map<string, number>();

export function touchRead(env: Env, ctx: ExecutionContext, meshId: string, now = Date.now()): void {
  const last = lastReadTouch.get(meshId);
  if (last !== undefined && now - last < READ_TOUCH_INTERVAL_MS) return;
  if (lastReadTouch.size >= MAX_TRACKED_MESHES) lastReadTouch.clear();
  lastReadTouch.set(meshId, now);
  const write = env.DB.prepare(
    `INSERT INTO mesh_usage (mesh, last_read_at) VALUES (?1, ?2)
     ON CONFLICT (mesh) DO UPDATE SET last_read_at = max(coalesce(mesh_usage.last_read_at, 0), excluded.last_read_at)`,
  )
    .bind(meshId, now)
    .run()
    .catch((err: unknown) => {
      console.error(JSON.stringify({ level: "warn", msg: "last_read_at update failed", mesh: meshId, error: String(err) }));
    });
  ctx.waitUntil(write);
}

export interface StoredUsage {
  storedBytes: number;
  storedCount: number;
}

export async function readStoredUsage(db: D1Database, meshId: string): Promise<StoredUsage> {
  const row = await db
    .prepare(`SELECT stored_bytes, stored_count FROM mesh_usage WHERE mesh = ?1`)
    .bind(meshId)
    .first<{ stored_bytes: number; stored_count: number }>();
  return { storedBytes: row?.stored_bytes ?? 0, storedCount: row?.stored_count ?? 0 };
}
