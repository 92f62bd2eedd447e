// Snapshot (`mainline/*`) commit state. Bodies live in R2; the hub decides who may write them.
// The lease is granted BEFORE any byte reaches R2, so of two concurrent different-bytes PUTs only
// the lease owner ever stores; the other hashes its body and is told 200 (identical) or 409.
//
// Row states: `candidate` (uploading or uploaded, not yet named by a pointer), `committed` (a
// pointer named it: immutable), `deleting` (a DELETE claimed it and is removing the body) and
// `deleted` (its body is gone). A claimed or deleted snapshot can never be committed, so a
// pointer commit cannot race a delete into naming a body that is gone.
import type { ArchivedSnapshot, HubPrecondition, HubRefusal, HubResult, SnapshotComparison, SnapshotOpening, SnapshotRecord } from "./hub-api";
import { failedPrecondition, refuse } from "./preconditions";

/**
 * How long a DELETE's claim keeps re-uploads of the name out while the Worker tombstones the index
 * and deletes the R2 body (milliseconds of work). A claim whose deleter died then counts as
 * deleted: never committable, but a new upload of the name may start over.
 */
export const DELETE_CLAIM_MS = 60_000;

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

  /** A delete claimed the name and may still be removing its body from R2. */
  #beingDeleted(row: SnapshotRow, now: number): boolean {
    return row.state === "deleting" && now < row.lease_until;
  }

  /** The body is gone (or its deleter died): the name holds nothing a PUT must respect. */
  #gone(row: SnapshotRow): boolean {
    return row.state === "deleting" || row.state === "deleted";
  }

  /** Decides whether this PUT streams into R2 (owner) or only compares its hash. */
  open(path: string, pre: HubPrecondition | undefined, leaseMs: number, now: number): HubResult<SnapshotOpening> {
    const found = this.#row(path);
    if (found !== null && this.#beingDeleted(found, now)) {
      return refuse("conflict", `${path} is being deleted; retry the PUT once the delete finished.`);
    }
    const row = found !== null && this.#gone(found) ? null : found;
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
    if (this.#gone(row)) return refuse("conflict", `${path} was deleted while this upload was being compared; retry the PUT.`);
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
    if (row !== null && this.#gone(row)) {
      return refuse("conflict", `${path} was deleted while this upload was streaming; retry the PUT.`);
    }
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

  /**
   * A multipart owner is about to complete(), which R2 cannot make conditional: it must still hold
   * the lease, and from here the lease is held for `windowMs` more so no one can take the name over
   * while complete() runs (the equivalent of the single put's etag condition).
   */
  seal(path: string, token: string, windowMs: number, now: number): HubResult<Record<never, never>> {
    const row = this.#row(path);
    if (row === null || row.token !== token || row.sha256 !== null || row.state !== "candidate") {
      return refuse("conflict", `The lease on ${path} lapsed before the upload finished; another writer took it over.`);
    }
    this.#sql.exec(`UPDATE snapshots SET lease_until = ? WHERE path = ?`, Math.max(row.lease_until, now + windowMs), path);
    return { ok: true };
  }

  /** The owner's upload failed: release the lease at once so a retry need not wait for it. */
  abort(path: string, token: string): void {
    this.#sql.exec(`DELETE FROM snapshots WHERE path = ? AND token = ? AND sha256 IS NULL`, path, token);
  }

  /**
   * Why a pointer may not commit a manifest naming this snapshot, or null if it may. A name the
   * ledger never saw stays committable (bodies from before the ledger, or written out of band).
   */
  uncommittable(path: string): HubRefusal | null {
    const row = this.#row(path);
    if (row === null) return null;
    if (this.#gone(row)) {
      return refuse("conflict", `The manifest names ${path}, which has been deleted; upload the snapshot again, then retry.`);
    }
    if (row.sha256 === null) {
      return refuse("conflict", `The manifest names ${path}, whose upload has not finished; retry once it has.`);
    }
    return null;
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

  /**
   * One atomic step before a DELETE touches anything: 409 if any path is live (named by a
   * committed pointer) or still being uploaded; otherwise every path is marked `deleting`, which
   * refuses later pointer commits naming it and new uploads of it. A repeat claim is allowed (the
   * client retries a DELETE that failed half-way).
   */
  claimForDeletion(paths: readonly string[], now: number): HubResult<Record<never, never>> {
    const live = this.liveSnapshots();
    const blocked = paths.find((p) => live.has(p));
    if (blocked !== undefined) {
      return refuse("conflict", `${blocked} is the snapshot the committed manifest names; it cannot be deleted.`);
    }
    for (const path of paths) {
      const row = this.#row(path);
      if (row !== null && row.state === "candidate" && row.sha256 === null && now < row.lease_until) {
        return refuse("conflict", `${path} is still being uploaded; it cannot be deleted until the upload finished.`);
      }
    }
    for (const path of paths) {
      this.#sql.exec(
        `INSERT INTO snapshots (path, state, token, lease_until, sha256, size, etag, modified_at)
         VALUES (?, 'deleting', NULL, ?, NULL, NULL, NULL, NULL)
         ON CONFLICT (path) DO UPDATE SET state = 'deleting', token = NULL, lease_until = excluded.lease_until,
           sha256 = NULL, size = NULL, etag = NULL, modified_at = NULL`,
        path,
        now + DELETE_CLAIM_MS,
      );
    }
    return { ok: true };
  }

  /**
   * The claimed bodies are gone from R2. The rows stay as `deleted` markers so a late pointer
   * commit naming them is still refused; a name someone uploaded again since is left alone.
   */
  forget(paths: readonly string[]): number {
    let forgotten = 0;
    for (const path of paths) {
      forgotten += this.#sql.exec(`UPDATE snapshots SET state = 'deleted' WHERE path = ? AND state = 'deleting'`, path).rowsWritten;
    }
    return forgotten;
  }

  /** Committed snapshots (for an archive), and every other name the ledger knows (not archived). */
  exportCommitted(): { snapshots: ArchivedSnapshot[]; uncommitted: string[] } {
    const rows = this.#sql.exec<SnapshotRow>(`SELECT * FROM snapshots ORDER BY path`).toArray();
    const snapshots: ArchivedSnapshot[] = [];
    const uncommitted: string[] = [];
    for (const row of rows) {
      if (row.state === "committed" && row.sha256 !== null) {
        const { path, sha256, size, etag, modifiedAt } = toRecord(row);
        snapshots.push({ path, sha256, size, etag, modifiedAt });
      } else uncommitted.push(row.path);
    }
    return { snapshots, uncommitted };
  }

  /** True when the ledger tracks no name at all (deletion markers included). */
  isEmpty(): boolean {
    return this.#sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM snapshots`).one().n === 0;
  }

  /** An import's committed snapshots, with the etags their bodies got in this bucket. */
  install(snapshots: readonly ArchivedSnapshot[]): void {
    for (const s of snapshots) {
      this.#sql.exec(
        `INSERT INTO snapshots (path, state, token, lease_until, sha256, size, etag, modified_at)
         VALUES (?, 'committed', NULL, 0, ?, ?, ?, ?)`,
        s.path,
        s.sha256,
        s.size,
        s.etag,
        s.modifiedAt,
      );
    }
  }

  /** Snapshots the hub tracks as present (deletion markers are not snapshots). */
  count(): number {
    return this.#sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM snapshots WHERE state IN ('candidate', 'committed')`).one().n;
  }
}
