// Snapshot (`mainline/*`) commit state. Bodies live in R2; the hub decides who may write them.
// The lease is granted BEFORE any byte reaches R2, so of two concurrent different-bytes PUTs only
// the lease owner ever stores; the other hashes its body and is told 200 (identical) or 409.
import type { HubPrecondition, HubResult, SnapshotComparison, SnapshotOpening, SnapshotRecord } from "./hub-api";
import { failedPrecondition, refuse } from "./preconditions";

interface SnapshotRow extends Record<string, SqlStorageValue> {
  path: string;
  state: string;
  token: string | null;
  lease_until: number;
  sha256: string | null;
  size: number | null;
  etag: string | null;
  modified_at: number | null;
}

function toRecord(row: SnapshotRow): SnapshotRecord {
  return {
    path: row.path,
    state: row.state === "committed" ? "committed" : "candidate",
    size: row.size ?? 0,
    etag: row.etag ?? "",
    sha256: row.sha256 ?? "",
    modifiedAt: row.modified_at ?? 0,
  };
}

export class SnapshotLedger {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  #row(path: string): SnapshotRow | null {
    return this.#sql.exec<SnapshotRow>(`SELECT * FROM snapshots WHERE path = ?`, path).toArray()[0] ?? null;
  }

  get(path: string): SnapshotRecord | null {
    const row = this.#row(path);
    return row && row.sha256 !== null ? toRecord(row) : null;
  }

  /** Decides whether this PUT streams into R2 (owner) or only compares its hash. */
  open(path: string, pre: HubPrecondition | undefined, leaseMs: number, now: number): HubResult<SnapshotOpening> {
    const row = this.#row(path);
    const stored = row !== null && row.sha256 !== null;
    const refusal = failedPrecondition(pre, stored ? row.etag : null);
    if (refusal) return refusal;
    if (row !== null && (row.state === "committed" || now < row.lease_until)) return { ok: true, role: "compare" };
    const token = crypto.randomUUID();
    this.#sql.exec(
      `INSERT INTO snapshots (path, state, token, lease_until, sha256, size, etag, modified_at)
       VALUES (?, 'candidate', ?, ?, NULL, NULL, NULL, NULL)
       ON CONFLICT (path) DO UPDATE SET state = 'candidate', token = excluded.token,
         lease_until = excluded.lease_until, sha256 = NULL, size = NULL, etag = NULL, modified_at = NULL`,
      path,
      token,
      now + leaseMs,
    );
    return { ok: true, role: "owner", token, status: stored ? 204 : 201 };
  }

  /** A non-owner's verdict: identical bytes settle as 200; anything else is 409. */
  compare(path: string, sha256: string, now: number): HubResult<SnapshotComparison> {
    const row = this.#row(path);
    if (row === null) return refuse("conflict", `${path} was abandoned by the upload that held its lease; retry the PUT.`);
    if (row.sha256 === null) {
      if (now < row.lease_until) return { ok: true, settled: false };
      return refuse("conflict", `The upload holding the lease on ${path} did not finish; retry the PUT.`);
    }
    if (row.sha256 === sha256) return { ok: true, settled: true, record: toRecord(row) };
    return refuse(
      "conflict",
      row.state === "committed"
        ? `${path} is a committed snapshot and is immutable; different bytes are refused.`
        : `Another compactor's candidate ${path} holds the lease; different bytes are refused.`,
    );
  }

  /** The owner's body is in R2: record what it hashes to. Refused if the lease was lost meanwhile. */
  finish(path: string, token: string, sha256: string, size: number, etag: string, now: number): HubResult<{ record: SnapshotRecord }> {
    const row = this.#row(path);
    if (row === null || row.token !== token || row.sha256 !== null) {
      return refuse("conflict", `The lease on ${path} lapsed before the upload finished; another writer took it over.`);
    }
    this.#sql.exec(
      `UPDATE snapshots SET token = NULL, sha256 = ?, size = ?, etag = ?, modified_at = ? WHERE path = ?`,
      sha256,
      size,
      etag,
      now,
      path,
    );
    return { ok: true, record: toRecord(this.#row(path)!) };
  }

  /** The owner's upload failed: release the lease at once so a retry need not wait for it. */
  abort(path: string, token: string): void {
    this.#sql.exec(`DELETE FROM snapshots WHERE path = ? AND token = ? AND sha256 IS NULL`, path, token);
  }

  /** A pointer commit named this snapshot: it is immutable from now on. */
  commit(path: string): void {
    this.#sql.exec(`UPDATE snapshots SET state = 'committed' WHERE path = ?`, path);
  }

  /** Snapshots that a committed manifest names (one per root) are never deletable. */
  liveSnapshots(): Set<string> {
    const rows = this.#sql
      .exec<{ snapshot_path: string }>(`SELECT snapshot_path FROM roots WHERE snapshot_path IS NOT NULL`)
      .toArray();
    return new Set(rows.map((r) => r.snapshot_path));
  }

  assertDeletable(paths: readonly string[]): HubResult<Record<never, never>> {
    const live = this.liveSnapshots();
    const blocked = paths.find((p) => live.has(p));
    if (blocked !== undefined) {
      return refuse("conflict", `${blocked} is the snapshot the committed manifest names; it cannot be deleted.`);
    }
    return { ok: true };
  }

  /** Drops tracking of deleted bodies; an upload in progress keeps its lease. */
  forget(paths: readonly string[]): number {
    const live = this.liveSnapshots();
    let forgotten = 0;
    for (const path of paths) {
      if (live.has(path)) continue;
      forgotten += this.#sql.exec(`DELETE FROM snapshots WHERE path = ? AND sha256 IS NOT NULL`, path).rowsWritten;
    }
    return forgotten;
  }

  count(): number {
    return this.#sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM snapshots`).one().n;
  }
}
