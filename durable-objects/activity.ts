// The mesh's writes per hour (the dashboard's chart) and its last write time, counted in the
// hub's own SQLite, where counting is free: every write either passes through the hub (control
// objects) or notifies it for push. The alarm copies them to D1 (mesh_hourly.hub_writes, and
// mesh_usage.last_write_at with the control bytes) at most once per FLUSH_INTERVAL_MS, in one
// batch, so a flush pays no D1 statement for them. The copy carries absolute counts, so repeating
// it after a crash between the D1 write and the local bookkeeping counts nothing twice.
//
// A write costs one upsert: `rev`, which marks the hours changed since the last copy, is the write
// time (bumped past the previous one), so no counter is written beside it, and the due time and
// the last write time are kept in memory and rebuilt from the rows when the hub starts.
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
  #state: { rev: number; flushedRev: number; lastWriteAt: number; dirtySince: number } | null = null;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** Read once per hub start. Revs are write times (older hubs counted 1, 2, 3 …: all smaller). */
  #loaded(): { rev: number; flushedRev: number; lastWriteAt: number; dirtySince: number } {
    if (this.#state === null) {
      const flushedRev = readCounter(this.#sql, "activity_flushed_rev");
      const span = this.#sql
        .exec<{ top: number | null; oldest: number | null }>(
          `SELECT max(rev) AS top, min(rev) FILTER (WHERE rev > ?1) AS oldest FROM activity`,
          flushedRev,
        )
        .one();
      const top = Math.max(span.top ?? 0, readCounter(this.#sql, "activity_rev"));
      this.#state = {
        rev: top,
        flushedRev,
        lastWriteAt: Math.max(readCounter(this.#sql, "activity_last_write_at"), top),
        // The oldest uncopied write's time (its rev); an older hub's small rev makes the copy due at once.
        dirtySince: span.oldest ?? 0,
      };
    }
    return this.#state;
  }

  /** Forgets the state (after the hub's storage was wiped). */
  reset(): void {
    this.#state = null;
  }

  /** One write of `bytes` at `at`. */
  count(at: number, bytes: number): void {
    const state = this.#loaded();
    state.rev = Math.max(state.rev + 1, at);
    this.#sql.exec(
      `INSERT INTO activity (hour, writes, bytes, rev) VALUES (?1, 1, ?2, ?3)
       ON CONFLICT (hour) DO UPDATE SET writes = writes + 1, bytes = bytes + excluded.bytes, rev = excluded.rev`,
      Math.floor(at / HOUR_MS),
      Math.max(0, Math.floor(bytes)),
      state.rev,
    );
    state.lastWriteAt = Math.max(state.lastWriteAt, at);
    if (state.dirtySince === 0) state.dirtySince = at;
  }

  /** When the next copy is due, or null when D1 has everything. */
  dueAt(): number | null {
    const since = this.#loaded().dirtySince;
    return since === 0 ? null : since + FLUSH_INTERVAL_MS;
  }

  /** Makes the next copy due a full interval from `now`. */
  postpone(now: number): void {
    this.#loaded().dirtySince = now;
  }

  /** Copies what changed since the last copy through `sink`; a failed sink leaves it due again. */
  async flush(sink: ActivitySink, now: number): Promise<void> {
    const state = this.#loaded();
    const rows = this.#sql
      .exec<{ hour: number; writes: number; bytes: number; rev: number }>(
        `SELECT hour, writes, bytes, rev FROM activity WHERE rev > ?1 ORDER BY hour`,
        state.flushedRev,
      )
      .toArray();
    if (rows.length === 0) {
      state.dirtySince = 0;
      return;
    }
    const upTo = Math.max(...rows.map((r) => r.rev));
    try {
      await sink(
        rows.map((r) => ({ hour: r.hour, writes: r.writes, bytes: r.bytes })),
        state.lastWriteAt,
      );
    } catch (err) {
      this.postpone(now);
      throw err;
    }
    // Writes counted while the sink ran have a newer rev and stay due.
    writeMeta(this.#sql, "activity_flushed_rev", upTo);
    // The last write time survives a restart in the rows' revs, and in meta once they are pruned.
    writeMeta(this.#sql, "activity_last_write_at", state.lastWriteAt);
    state.flushedRev = upTo;
    state.dirtySince = state.rev > upTo ? now : 0;
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
