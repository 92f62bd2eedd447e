// Per-mesh usage in D1 (mesh_usage): last write/read times for stats and idle cleanup, and the
// stored-file byte and file counts that the quota is checked against; and writes per hour
// (mesh_hourly) for the dashboard's chart.
import type { Env } from "../env";

export const HOUR_MS = 3_600_000;

/**
 * Batched with every index write, so recording the write costs no extra round trip: the mesh's
 * last write time and its hourly counter (mesh_hourly, the dashboard's chart) in one batch.
 */
export function touchWriteStatements(db: D1Database, meshId: string, at: number, bytes = 0): D1PreparedStatement[] {
  return [
    db
      .prepare(
        `INSERT INTO mesh_usage (mesh, last_write_at) VALUES (?1, ?2)
         ON CONFLICT (mesh) DO UPDATE SET last_write_at = max(coalesce(mesh_usage.last_write_at, 0), excluded.last_write_at)`,
      )
      .bind(meshId, at),
    hourlyWriteStatement(db, meshId, at, bytes),
  ];
}

/** One write of `bytes` counted in the hour holding `at` (mesh_hourly, the dashboard's chart). */
export function hourlyWriteStatement(db: D1Database, meshId: string, at: number, bytes = 0): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO mesh_hourly (mesh, hour, writes, bytes) VALUES (?1, ?2, 1, ?3)
       ON CONFLICT (mesh, hour) DO UPDATE SET writes = mesh_hourly.writes + 1, bytes = mesh_hourly.bytes + excluded.bytes`,
    )
    .bind(meshId, Math.floor(at / HOUR_MS), Math.max(0, Math.floor(bytes)));
}

export interface HourlyBucket {
  /** Epoch ms of the hour's start. */
  hourStart: number;
  writes: number;
  bytes: number;
}

/** The last `hours` hourly buckets up to and including the one holding `now`, oldest first, zeros filled. */
export async function readHourlyActivity(db: D1Database, meshId: string, hours: number, now = Date.now()): Promise<HourlyBucket[]> {
  const last = Math.floor(now / HOUR_MS);
  const first = last - hours + 1;
  const { results } = await db
    .prepare(`SELECT hour, writes, bytes FROM mesh_hourly WHERE mesh = ?1 AND hour BETWEEN ?2 AND ?3`)
    .bind(meshId, first, last)
    .all<{ hour: number; writes: number; bytes: number }>();
  const byHour = new Map(results.map((r) => [r.hour, r]));
  return Array.from({ length: hours }, (_, i) => {
    const row = byHour.get(first + i);
    return { hourStart: (first + i) * HOUR_MS, writes: row?.writes ?? 0, bytes: row?.bytes ?? 0 };
  });
}

/** Hourly counters older than `cutoff` (epoch ms) go; a bounded batch per call, the cron comes back. */
export async function pruneHourlyActivity(db: D1Database, cutoff: number, limit = 5_000): Promise<number> {
  const result = await db
    .prepare(
      `DELETE FROM mesh_hourly WHERE (mesh, hour) IN (SELECT mesh, hour FROM mesh_hourly WHERE hour < ?1 LIMIT ?2)`,
    )
    .bind(Math.floor(cutoff / HOUR_MS), limit)
    .run();
  return result.meta.changes ?? 0;
}

/** The statement an admin wipe batches to forget the mesh's counters. */
export function deleteHourlyStatement(db: D1Database, meshId: string): D1PreparedStatement {
  return db.prepare(`DELETE FROM mesh_hourly WHERE mesh = ?1`).bind(meshId);
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

/** Whether the mesh was ever written or read (a wipe deletes the row). */
export async function hasUsageRow(db: D1Database, meshId: string): Promise<boolean> {
  return (await db.prepare(`SELECT 1 AS y FROM mesh_usage WHERE mesh = ?1`).bind(meshId).first()) !== null;
}
