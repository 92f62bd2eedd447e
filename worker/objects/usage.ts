// Per-mesh usage in D1 (mesh_usage): last write/read times for stats and idle cleanup, and the
// stored-file byte and file counts that the quota is checked against.
import type { Env } from "../env";
import type { Config } from "../lib/config";

/** The statement that records a write of the mesh at `at` (never moves last_write_at back). */
export function touchWriteStatement(db: D1Database, meshId: string, at: number): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO mesh_usage (mesh, last_write_at) VALUES (?1, ?2)
       ON CONFLICT (mesh) DO UPDATE SET last_write_at = max(coalesce(mesh_usage.last_write_at, 0), excluded.last_write_at)`,
    )
    .bind(meshId, at);
}

/**
 * Writes are coalesced: the steady flush pays one D1 write statement per object, not two. The
 * index upsert returns the mesh's recorded last_write_at (RETURNING_LAST_WRITE, read inside the same
 * statement), and the touch runs only when that value is older than the interval (or missing). This
 * isolate batches the touch into the same round trip when it predicts one is due (its own last
 * touch is an interval old), so the usual cost is one round trip either way.
 * last_write_at lags the true last write by at most the interval: stats, the mesh list and idle
 * cleanup see that delay. Idle cleanup stays safe: a touch is skipped only when D1 itself showed a
 * write less than an interval old, and markEvicted compares last_write_at, so a mesh written
 * after it was found idle is never evicted; the interval is at most half the idle TTL.
 */
const WRITE_TOUCH_INTERVAL_MS = 60_000;
/** Per-isolate maps are bounded by count (issue 12, memory). */
const MAX_TRACKED_MESHES = 10_000;
const lastWriteTouch = new Map<string, number>();

/** Appended to an objects upsert: the mesh's recorded last write, read by runWithWriteTouch. */
export const RETURNING_LAST_WRITE =
  "RETURNING (SELECT last_write_at FROM mesh_usage WHERE mesh_usage.mesh = objects.mesh) AS usage_write_at";

export function writeTouchIntervalMs(config: Config): number {
  const ttl = config.idleMeshTtlDays;
  return ttl === null ? WRITE_TOUCH_INTERVAL_MS : Math.min(WRITE_TOUCH_INTERVAL_MS, (ttl * 86_400_000) / 2);
}

function noteTouched(meshId: string, at: number): void {
  if (lastWriteTouch.size >= MAX_TRACKED_MESHES && !lastWriteTouch.has(meshId)) lastWriteTouch.clear();
  lastWriteTouch.set(meshId, at);
}

/**
 * Runs one index upsert that ends in RETURNING_LAST_WRITE and records the write in mesh_usage when
 * due; both are durable before this returns (a write is acknowledged only then). An upsert that
 * changed nothing (a kept tombstone) records no write.
 */
export async function runWithWriteTouch(
  db: D1Database,
  meshId: string,
  at: number,
  upsert: D1PreparedStatement,
  intervalMs: number,
): Promise<D1Result> {
  const last = lastWriteTouch.get(meshId);
  if (last === undefined || at - last >= intervalMs || at < last) {
    const [result] = await db.batch([upsert, touchWriteStatement(db, meshId, at)]);
    noteTouched(meshId, at);
    return result!;
  }
  // batch() even for one statement: one code path for the index write, whichever way the touch goes.
  const [result] = await db.batch([upsert]);
  if (result === undefined) throw new Error("D1 batch returned no result for the index upsert");
  const recorded = (result.results[0] as { usage_write_at?: number | null } | undefined)?.usage_write_at ?? null;
  if ((result.meta.changes ?? 0) > 0 && (recorded === null || at - recorded >= intervalMs)) {
    await touchWriteStatement(db, meshId, at).run();
    noteTouched(meshId, at);
  }
  return result;
}

/** A wiped mesh has no usage row: its next write in this isolate must record one again. */
export function forgetWriteTouch(meshId: string): void {
  lastWriteTouch.delete(meshId);
}

/** Reads are frequent and the field is only for stats and idle cleanup: one write a minute per isolate is plenty. */
const READ_TOUCH_INTERVAL_MS = 60_000;
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
