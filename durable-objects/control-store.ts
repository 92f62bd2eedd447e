// Control objects in the hub's SQLite storage, bytes verbatim, with the write rules of
// PROTOCOL.md section 3: the manifest pointer CAS, immutable committed generations with candidate
// leases, the head.json max-register, and plain overwrite for device records. Every method is
// synchronous SQL, so each call is one atomic step of the single-threaded hub.
import type {
  ArchivedControl,
  ArchivedRoot,
  ControlBody,
  ControlClass,
  ControlDeletion,
  ControlRecord,
  ControlWrite,
  HubDeletePrecondition,
  HubPrecondition,
  HubResult,
} from "./hub-api";
import { generationOf, nameOf, normalizePath, parentOf } from "../worker/lib/paths";
import { MAX_HLC_CHARS, isSaneHlc } from "../worker/lib/hlc";
import { nextCounter, readCounter } from "./hub-schema";
import { failedPrecondition, refuse } from "./preconditions";
import type { SnapshotLedger } from "./snapshot-ledger";

interface MetaRow extends Record<string, SqlStorageValue> {
  path: string;
  cls: string;
  size: number;
  sha256: string;
  modified_at: number;
  version: number;
  state: string | null;
  lease_until: number | null;
}

interface ControlRow extends MetaRow {
  body: ArrayBuffer;
}

export interface ControlWriteInput {
  path: string;
  cls: ControlClass;
  body: Uint8Array;
  /** Hex SHA-256 of body, computed before the call so the write itself never awaits. */
  sha256: string;
  pre?: HubPrecondition;
  leaseMs: number;
  now: number;
}

const etagOf = (sha256: string) => `"${sha256}"`;

function toRecord(row: MetaRow): ControlRecord {
  return {
    path: row.path,
    cls: row.cls as ControlClass,
    size: row.size,
    etag: etagOf(row.sha256),
    modifiedAt: row.modified_at,
    version: row.version,
  };
}

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
const encoder = new TextEncoder();

function parseJsonObject(body: Uint8Array | ArrayBuffer): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(decoder.decode(body));
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Bytewise (UTF-8) order, so the max-register does not depend on JS string collation. */
function compareBytes(a: string, b: string): number {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    if (x[i] !== y[i]) return x[i]! - y[i]!;
  }
  return x.length - y.length;
}

interface PointerTarget {
  generation: number;
  generationPath: string;
}

function parsePointer(path: string, body: Uint8Array): PointerTarget | null {
  const json = parseJsonObject(body);
  if (!json) return null;
  const generation = json.currentGeneration;
  const file = json.file;
  if (typeof generation !== "number" || !Number.isSafeInteger(generation) || generation < 0) return null;
  if (typeof file !== "string") return null;
  const folder = parentOf(path);
  let generationPath: string;
  try {
    // The client writes a bare name relative to the pointer's folder; a full path must stay in it.
    generationPath = file.includes("/") ? normalizePath(file) : normalizePath(`${folder}/${file}`);
  } catch {
    return null;
  }
  if (parentOf(generationPath) !== folder || generationOf(generationPath) !== generation) return null;
  return { generation, generationPath };
}

/** The full snapshot path a generation manifest names, or null (bootstrap manifests name none). */
function snapshotPathOf(generationBody: ArrayBuffer | Uint8Array): string | null {
  const json = parseJsonObject(generationBody);
  const raw = json?.snapshotPath;
  if (typeof raw !== "string" || raw === "") return null;
  try {
    return normalizePath(raw);
  } catch {
    return null;
  }
}

export class ControlStore {
  readonly #sql: SqlStorage;
  readonly #snapshots: SnapshotLedger;

  constructor(sql: SqlStorage, snapshots: SnapshotLedger) {
    this.#sql = sql;
    this.#snapshots = snapshots;
  }

  #row(path: string): ControlRow | null {
    return this.#sql.exec<ControlRow>(`SELECT * FROM control WHERE path = ?`, path).toArray()[0] ?? null;
  }

  #committedGeneration(root: string): number | null {
    const row = this.#sql.exec<{ generation: number }>(`SELECT generation FROM roots WHERE root = ?`, root).toArray()[0];
    return row ? row.generation : null;
  }

  read(path: string): ControlBody | null {
    const row = this.#row(path);
    return row ? { record: toRecord(row), body: new Uint8Array(row.body) } : null;
  }

  list(prefix: string): ControlRecord[] {
    const rows = this.#sql
      .exec<MetaRow>(
        `SELECT path, cls, size, sha256, modified_at, version, state, lease_until FROM control
         WHERE substr(path, 1, length(?1)) = ?1 ORDER BY path`,
        prefix,
      )
      .toArray();
    return rows.map(toRecord);
  }

  write(input: ControlWriteInput): HubResult<ControlWrite> {
    const existing = this.#row(input.path);
    const refusal = failedPrecondition(input.pre, existing ? etagOf(existing.sha256) : null);
    if (refusal) return refusal;
    switch (input.cls) {
      case "device":
        return this.#store(input, existing, null, null);
      case "head":
        return this.#writeHead(input, existing);
      case "generation":
        return this.#writeGeneration(input, existing);
      case "manifest":
        return this.#writePointer(input, existing);
    }
  }

  #writeHead(input: ControlWriteInput, existing: ControlRow | null): HubResult<ControlWrite> {
    const hlc = parseJsonObject(input.body)?.latestHlc;
    if (!isSaneHlc(hlc)) {
      return refuse(
        "invalid_body",
        `head.json must be a JSON object whose latestHlc is a string of 1 to ${MAX_HLC_CHARS} printable ASCII characters.`,
      );
    }
    if (existing) {
      const stored = parseJsonObject(existing.body)?.latestHlc;
      // Equal or lower: "head is at least mine" already holds, so the writer is told 200. A stored
      // value of no sane shape (written before this check existed) loses to any real one, so a
      // head frozen by it thaws on the next flush.
      if (isSaneHlc(stored) && compareBytes(hlc, stored) <= 0) return this.#unchanged(existing);
    }
    return this.#store(input, existing, null, null);
  }

  #writeGeneration(input: ControlWriteInput, existing: ControlRow | null): HubResult<ControlWrite> {
    const generation = generationOf(input.path) ?? 0;
    const committed = this.#committedGeneration(parentOf(input.path));
    if (existing && existing.sha256 === input.sha256) return this.#unchanged(existing);
    if (existing?.state === "committed") {
      return refuse("conflict", `${nameOf(input.path)} is committed and immutable; different bytes are refused.`);
    }
    if (committed !== null && generation <= committed) {
      return refuse(
        "conflict",
        `${nameOf(input.path)} is at or below the committed generation ${committed}; this mesh is live, re-read manifest.json.`,
      );
    }
    if (existing && existing.lease_until !== null && input.now < existing.lease_until) {
      return refuse("conflict", `Another compactor's candidate ${nameOf(input.path)} holds the lease; different bytes are refused.`);
    }
    return this.#store(input, existing, "candidate", input.now + input.leaseMs);
  }

  #writePointer(input: ControlWriteInput, existing: ControlRow | null): HubResult<ControlWrite> {
    const target = parsePointer(input.path, input.body);
    if (!target) {
      return refuse(
        "bad_request",
        "manifest.json must be a JSON object {currentGeneration, file} where file is manifest-<currentGeneration>.json in the same folder.",
      );
    }
    const root = parentOf(input.path);
    const committed = this.#committedGeneration(root);
    if (existing && committed !== null) {
      if (target.generation < committed) {
        return refuse("conflict", `manifest.json is at generation ${committed}; generation ${target.generation} is lower.`);
      }
      if (target.generation === committed) {
        if (existing.sha256 === input.sha256) return this.#unchanged(existing);
        return refuse("conflict", `manifest.json is already at generation ${committed} with different bytes.`);
      }
    }
    const generationRow = this.#row(target.generationPath);
    if (!generationRow) {
      return refuse("conflict", `manifest.json names ${nameOf(target.generationPath)}, which does not exist.`);
    }
    const snapshotPath = snapshotPathOf(generationRow.body);
    // Checked before anything changes: a snapshot a DELETE claimed must never become live.
    const uncommittable = snapshotPath === null ? null : this.#snapshots.uncommittable(snapshotPath);
    if (uncommittable) return uncommittable;
    this.#sql.exec(`UPDATE control SET state = 'committed', lease_until = NULL WHERE path = ?`, target.generationPath);
    this.#sql.exec(
      `INSERT INTO roots (root, generation, snapshot_path) VALUES (?, ?, ?)
       ON CONFLICT (root) DO UPDATE SET generation = excluded.generation, snapshot_path = excluded.snapshot_path`,
      root,
      target.generation,
      snapshotPath,
    );
    if (snapshotPath !== null) this.#snapshots.commit(snapshotPath);
    return this.#store(input, existing, null, null);
  }

  #unchanged(row: ControlRow): HubResult<ControlWrite> {
    return { ok: true, status: 200, changed: false, record: toRecord(row) };
  }

  #store(input: ControlWriteInput, existing: ControlRow | null, state: string | null, leaseUntil: number | null): HubResult<ControlWrite> {
    const version = nextCounter(this.#sql, "version");
    this.#sql.exec(
      `INSERT INTO control (path, cls, body, size, sha256, modified_at, version, state, lease_until)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (path) DO UPDATE SET cls = excluded.cls, body = excluded.body, size = excluded.size,
         sha256 = excluded.sha256, modified_at = excluded.modified_at, version = excluded.version,
         state = excluded.state, lease_until = excluded.lease_until`,
      input.path,
      input.cls,
      input.body,
      input.body.byteLength,
      input.sha256,
      input.now,
      version,
      state,
      leaseUntil,
    );
    const record = toRecord(this.#row(input.path)!);
    return { ok: true, status: existing ? 204 : 201, changed: true, record };
  }

  /** Deletes whichever of the paths exist. Deleting a pointer resets its root (a deliberate wipe). */
  delete(paths: readonly string[], pre: HubDeletePrecondition | undefined, now: number): HubResult<ControlDeletion> {
    if (pre) {
      const target = this.#row(pre.path);
      const refusal = failedPrecondition(pre, target ? etagOf(target.sha256) : null);
      if (refusal) return refusal;
    }
    const deleted: ControlRecord[] = [];
    for (const path of paths) {
      const row = this.#row(path);
      if (row) deleted.push(toRecord(row));
    }
    if (deleted.length === 0) return { ok: true, deleted, version: readCounter(this.#sql, "version"), at: now };
    const version = nextCounter(this.#sql, "version");
    for (const record of deleted) {
      this.#sql.exec(`DELETE FROM control WHERE path = ?`, record.path);
      if (record.cls === "manifest") this.#sql.exec(`DELETE FROM roots WHERE root = ?`, parentOf(record.path));
    }
    return { ok: true, deleted, version, at: now };
  }

  /** The committed state for an archive: every control object but generation candidates, and the roots. */
  exportCommitted(): { control: ArchivedControl[]; roots: ArchivedRoot[] } {
    const rows = this.#sql
      .exec<ControlRow>(`SELECT * FROM control WHERE cls <> 'generation' OR state = 'committed' ORDER BY path`)
      .toArray();
    const control = rows.map((row) => ({
      path: row.path,
      cls: row.cls as ControlClass,
      body: new Uint8Array(row.body),
      sha256: row.sha256,
      modifiedAt: row.modified_at,
      state: row.cls === "generation" ? ("committed" as const) : null,
    }));
    const roots = this.#sql
      .exec<{ root: string; generation: number; snapshot_path: string | null }>(`SELECT * FROM roots ORDER BY root`)
      .toArray()
      .map((r) => ({ root: r.root, generation: r.generation, snapshotPath: r.snapshot_path }));
    return { control, roots };
  }

  /** True when the hub holds no control object and no root. */
  isEmpty(): boolean {
    const n = this.#sql.exec<{ n: number }>(`SELECT (SELECT COUNT(*) FROM control) + (SELECT COUNT(*) FROM roots) AS n`).one().n;
    return n === 0;
  }

  /**
   * Installs an archive's committed state into an empty hub (the caller checked emptiness in the
   * same transaction). Each pointer must name a committed generation and agree with its root, so
   * the CAS rules hold afterwards exactly as they did where the archive was taken. Hashes were
   * verified by the caller. Returns the records with the versions this hub gave them.
   */
  install(control: readonly ArchivedControl[], roots: readonly ArchivedRoot[], now: number): HubResult<{ records: ControlRecord[] }> {
    const byPath = new Map(control.map((c) => [c.path, c]));
    for (const item of control) {
      if (item.cls === "generation" && item.state !== "committed") {
        return refuse("bad_request", `${item.path} is a generation candidate; an archive holds only committed generations.`);
      }
      if (item.cls === "manifest") {
        const target = parsePointer(item.path, item.body);
        const root = roots.find((r) => r.root === parentOf(item.path));
        if (!target || !root || root.generation !== target.generation || byPath.get(target.generationPath)?.state !== "committed") {
          return refuse("bad_request", `${item.path} does not name a committed generation of its root in this archive.`);
        }
        if (snapshotPathOf(byPath.get(target.generationPath)!.body) !== root.snapshotPath) {
          return refuse("bad_request", `The root ${root.root} names a snapshot its committed generation does not.`);
        }
      }
    }
    for (const root of roots) {
      if (!byPath.has(root.root === "/" ? "/manifest.json" : `${root.root}/manifest.json`)) {
        return refuse("bad_request", `The root ${root.root} has no manifest.json in this archive.`);
      }
    }
    const records: ControlRecord[] = [];
    for (const item of control) {
      const version = nextCounter(this.#sql, "version");
      this.#sql.exec(
        `INSERT INTO control (path, cls, body, size, sha256, modified_at, version, state, lease_until)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
        item.path,
        item.cls,
        item.body,
        item.body.byteLength,
        item.sha256,
        Number.isFinite(item.modifiedAt) && item.modifiedAt > 0 ? item.modifiedAt : now,
        version,
        item.state,
      );
      records.push(toRecord(this.#row(item.path)!));
    }
    for (const root of roots) {
      this.#sql.exec(`INSERT INTO roots (root, generation, snapshot_path) VALUES (?, ?, ?)`, root.root, root.generation, root.snapshotPath);
    }
    return { ok: true, records };
  }

  stats(): { controlObjects: number; controlBytes: number; currentGeneration: number | null } {
    const totals = this.#sql
      .exec<{ n: number; bytes: number | null }>(`SELECT COUNT(*) AS n, SUM(size) AS bytes FROM control`)
      .one();
    const top = this.#sql.exec<{ g: number | null }>(`SELECT MAX(generation) AS g FROM roots`).one();
    return { controlObjects: totals.n, controlBytes: totals.bytes ?? 0, currentGeneration: top.g };
  }
}
