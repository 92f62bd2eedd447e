// Per-mesh usage in D1 (mesh_usage): last write/read times for stats and idle cleanup, and the
// stored-file byte and file counts that the quota is checked against; and writes per hour
// (mesh_hourly) for the dashboard's chart. Sync-object writes are counted by the mesh's hub and
// copied here from its alarm (hubActivityStatements); stored files count in their own D1 batch.
import type { Env } from "../env";
import type { Config } from "../lib/config";
import type { HourlyCount } from "../../durable-objects/hub-api";
import { indexDbFor } from "../shards/mesh-index-db";
import { NOT_MOVED } from "../shards/shard-bindings";

export const HOUR_MS = 3_600_000;

/** The statement that records a write of the mesh at `at` (never moves last_write_at back). */
export function touchWriteStatement(db: D1Database, meshId: string, at: number): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO mesh_usage (mesh, last_write_at) VALUES (?1, ?2)
       ON CONFLICT (mesh) DO UPDATE SET last_write_at = max(coalesce(mesh_usage.last_write_at, 0), excluded.last_write_at)`,
    )
    .bind(meshId, at);
}

/** One stored-file write of `bytes` counted in the hour holding `at` (mesh_hourly, the dashboard's chart). */
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

/** The first hour of a window of `hours` ending with the hour holding `now`. */
export function firstHourOf(hours: number, now: number): number {
  return Math.floor(now / HOUR_MS) - hours + 1;
}

/**
 * The last `hours` hourly buckets up to and including the one holding `now`, oldest first, zeros
 * filled. `fromHub` is the hub's own count of the recent hours (newer than its last copy to D1);
 * it is awaited beside the D1 query.
 */
export async function readHourlyActivity(
  db: D1Database,
  meshId: string,
  hours: number,
  now: number,
  fromHub: Promise<readonly HourlyCount[]>,
): Promise<HourlyBucket[]> {
  const first = firstHourOf(hours, now);
  const last = first + hours - 1;
  const [{ results }, hubCounts] = await Promise.all([
    db
      .prepare(`SELECT hour, writes, bytes, hub_writes, hub_bytes FROM mesh_hourly WHERE mesh = ?1 AND hour BETWEEN ?2 AND ?3`)
      .bind(meshId, first, last)
      .all<{ hour: number; writes: number; bytes: number; hub_writes: number; hub_bytes: number }>(),
    fromHub,
  ]);
  const byHour = new Map(results.map((r) => [r.hour, r]));
  const hubByHour = new Map(hubCounts.map((r) => [r.hour, r]));
  return Array.from({ length: hours }, (_, i) => {
    const row = byHour.get(first + i);
    const hub = hubByHour.get(first + i);
    // The hub's figure is absolute and never behind the copy in D1.
    const hubWrites = Math.max(row?.hub_writes ?? 0, hub?.writes ?? 0);
    const hubBytes = Math.max(row?.hub_bytes ?? 0, hub?.bytes ?? 0);
    return { hourStart: (first + i) * HOUR_MS, writes: (row?.writes ?? 0) + hubWrites, bytes: (row?.bytes ?? 0) + hubBytes };
  });
}

/** What the hub copies to D1 from its alarm. */
export interface HubActivity {
  rows: readonly HourlyCount[];
  /** The mesh's latest write the hub saw (epoch ms). */
  lastWriteAt: number;
  /** The bytes of its control objects now. */
  controlBytes: number;
}

/**
 * The hub's copy: its counts, absolute per hour (max, so a repeated or reordered copy never lowers
 * a figure), its latest write time and its control bytes, in one batch of two statements.
 */
export function hubActivityStatements(db: D1Database, meshId: string, activity: HubActivity): D1PreparedStatement[] {
  const { rows, lastWriteAt, controlBytes } = activity;
  const counts = db
    .prepare(
      `INSERT INTO mesh_hourly (mesh, hour, hub_writes, hub_bytes)
       SELECT ?1, json_extract(value, '$.hour'), json_extract(value, '$.writes'), json_extract(value, '$.bytes')
       FROM json_each(?2) WHERE true
       ON CONFLICT (mesh, hour) DO UPDATE SET
         hub_writes = max(mesh_hourly.hub_writes, excluded.hub_writes),
         hub_bytes = max(mesh_hourly.hub_bytes, excluded.hub_bytes)`,
    )
    .bind(meshId, JSON.stringify(rows));
  const usage = db
    .prepare(
      `INSERT INTO mesh_usage (mesh, last_write_at, control_bytes) VALUES (?1, ?2, ?3)
       ON CONFLICT (mesh) DO UPDATE SET
         last_write_at = max(coalesce(mesh_usage.last_write_at, 0), excluded.last_write_at),
         control_bytes = excluded.control_bytes`,
    )
    .bind(meshId, lastWriteAt, controlBytes);
  return [counts, usage];
}

/** Hourly counters older than `cutoff` (epoch ms) go; a bounded batch per call, the cron comes back. */
export async function pruneHourlyActivity(db: D1Database, cutoff: number, limit = 5_000): Promise<number> {
  const result = await db
    .prepare(
      `DELETE FROM mesh_hourly WHERE (mesh, hour) IN (SELECT mesh, hour FROM mesh_hourly WHERE hour < ?1 AND ${NOT_MOVED} LIMIT ?2)`,
    )
    .bind(Math.floor(cutoff / HOUR_MS), limit)
    .run();
  return result.meta.changes ?? 0;
}

/** The statement an admin wipe batches to forget the mesh's counters. */
export function deleteHourlyStatement(db: D1Database, meshId: string): D1PreparedStatement {
  return db.prepare(`DELETE FROM mesh_hourly WHERE mesh = ?1`).bind(meshId);
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

/** Whether this isolate's last touch of the mesh is an interval old (or unknown, or from a later clock). */
function touchDue(meshId: string, at: number, intervalMs: number): boolean {
  const last = lastWriteTouch.get(meshId);
  return last === undefined || at - last >= intervalMs || at < last;
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
  if (touchDue(meshId, at, intervalMs)) {
    const [result] = await db.batch([upsert, touchWriteStatement(db, meshId, at)]);
    noteTouched(meshId, at);
    return result!;
  }
  const result = await upsert.run();
  const recorded = (result.results[0] as { usage_write_at?: number | null } | undefined)?.usage_write_at ?? null;
  if ((result.meta.changes ?? 0) > 0 && (recorded === null || at - recorded >= intervalMs)) {
    await touchWriteStatement(db, meshId, at).run();
    noteTouched(meshId, at);
  }
  return result;
}

/**
 * For writes that commit without D1 (control objects, in the hub): records the write in the
 * background, only when this isolate's touch is due, so the steady flush (whose change-file PUT
 * already touched) pays nothing. The hub's alarm copies its own last write time within a minute
 * as well, so a lost background touch only delays the figure.
 */
export function touchWriteInBackground(env: Env, ctx: ExecutionContext, meshId: string, at: number, intervalMs: number): void {
  if (!touchDue(meshId, at, intervalMs)) return;
  noteTouched(meshId, at);
  const touch = touchWriteStatement(indexDbFor(env, meshId), meshId, at)
    .run()
    .catch((err: unknown) => {
      lastWriteTouch.delete(meshId);
      console.error(JSON.stringify({ level: "warn", msg: "last_write_at update failed", mesh: meshId, error: String(err) }));
    });
  ctx.waitUntil(touch);
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
  const write = indexDbFor(env, meshId).prepare(
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
