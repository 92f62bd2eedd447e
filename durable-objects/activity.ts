// The mesh's writes per hour (the dashboard's chart) and its last write time, counted in the
// hub's own SQLite, where counting is free: every write either passes through the hub (control
// objects) or notifies it for push. The alarm copies them to D1 (mesh_hourly.hub_writes, and
// mesh_usage.last_write_at with the control bytes) at most once per FLUSH_INTERVAL_MS, in one
// batch, so a flush pays no D1 statement for them. The copy carries absolute counts, so repeating
// it after a crash between the D1 write and the local bookkeeping counts nothing twice.
import type { HourlyCount } from "./hub-api";
import { readCounter, writeMeta } from "./hub-schema";

const HOUR_MS = 3_600_000;
/** How long a counted write may wait before D1 sees it. */
export const FLUSH_INTERVAL_MS = 60_000;
/** Hours kept here; older ones live in D1 only (the maintenance cron prunes D1 after 48 hours). */
const KEEP_HOURS = 48;

/** Writes the copy to D1; given the rows changed since the last copy and the latest write time. */
export type ActivitySink = (rows: HourlyCount[], lastWriteAt: number) => Promise<void>;

export class ActivityLedger {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** One write of `bytes` at `at`. */
  count(at: number, bytes: number): void {
    const rev = readCounter(this.#sql, "activity_rev") + 1;
    writeMeta(this.#sql, "activity_rev", rev);
    this.#sql.exec(
      `INSERT INTO activity (hour, writes, bytes, rev) VALUES (?1, 1, ?2, ?3)
       ON CONFLICT (hour) DO UPDATE SET writes = writes + 1, bytes = bytes + excluded.bytes, rev = excluded.rev`,
      Math.floor(at / HOUR_MS),
      Math.max(0, Math.floor(bytes)),
      rev,
    );
    if (at > readCounter(this.#sql, "activity_last_write_at")) writeMeta(this.#sql, "activity_last_write_at", at);
    if (readCounter(this.#sql, "activity_dirty_since") === 0) writeMeta(this.#sql, "activity_dirty_since", at);
  }

  /** When the next copy is due, or null when D1 has everything. */
  dueAt(): number | null {
    const since = readCounter(this.#sql, "activity_dirty_since");
    return since === 0 ? null : since + FLUSH_INTERVAL_MS;
  }

  /** Makes the next copy due a full interval from `now`. */
  postpone(now: number): void {
    writeMeta(this.#sql, "activity_dirty_since", now);
  }

  /** Copies what changed since the last copy through `sink`; a failed sink leaves it due again. */
  async flush(sink: ActivitySink, now: number): Promise<void> {
    const flushed = readCounter(this.#sql, "activity_flushed_rev");
    const rows = this.#sql
      .exec<{ hour: number; writes: number; bytes: number; rev: number }>(
        `SELECT hour, writes, bytes, rev FROM activity WHERE rev > ?1 ORDER BY hour`,
        flushed,
      )
      .toArray();
    if (rows.length === 0) {
      writeMeta(this.#sql, "activity_dirty_since", 0);
      return;
    }
    const upTo = Math.max(...rows.map((r) => r.rev));
    try {
      await sink(
        rows.map((r) => ({ hour: r.hour, writes: r.writes, bytes: r.bytes })),
        readCounter(this.#sql, "activity_last_write_at"),
      );
    } catch (err) {
      this.postpone(now);
      throw err;
    }
    // Writes counted while the sink ran have a newer rev and stay due.
    writeMeta(this.#sql, "activity_flushed_rev", upTo);
    const current = readCounter(this.#sql, "activity_rev");
    writeMeta(this.#sql, "activity_dirty_since", current > upTo ? now : 0);
    this.#sql.exec(`DELETE FROM activity WHERE hour < ?1`, Math.floor(now / HOUR_MS) - KEEP_HOURS);
  }

  /** The hours from `fromHour` on, as counted here (the newest answer for the last 48 hours). */
  since(fromHour: number): HourlyCount[] {
    return this.#sql
      .exec<{ hour: number; writes: number; bytes: number }>(`SELECT hour, writes, bytes FROM activity WHERE hour >= ?1 ORDER BY hour`, fromHour)
      .toArray()
      .map((r) => ({ hour: r.hour, writes: r.writes, bytes: r.bytes }));
  }
}
