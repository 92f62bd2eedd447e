// Installing a complete set of objects into an empty mesh (MeshInstaller), and the archive import
// built on it. Bodies stream straight into their final R2 keys; the hub's committed state, the
// index's "folder is indexed" mark and the usage row are published only at the very end. Any
// failure before that rolls the mesh back to empty (the mesh was empty when the install began, so
// the rollback is a full wipe of it), which is how a truncated or corrupt archive leaves nothing.
import type { Env } from "../env";
import type { ArchivedControl, ArchivedRoot, ArchivedSnapshot, ControlClass } from "../../durable-objects/hub-api";
import { meshHub, refusalToError } from "../hub-client";
import { readConfig } from "../lib/config";
import { badRequest, conflict, HttpError, payloadTooLarge, unavailable } from "../lib/errors";
import { classifyPath, isControlClass, nameOf, normalizeFilePath, objectKey, parentOf, storedFileKey, type PathClass } from "../lib/paths";
import { ByteReader, padding, readEntryHeader, type TarEntryHeader } from "../lib/tar";
import type { ObjectEntry } from "../objects/object-types";
import { toCustomMetadata } from "../objects/r2-objects";
import { deleteMeshUsage, wipeMeshData, DEFAULT_WIPE_BUDGET_MS, DEFAULT_WIPE_MAX_PAGES } from "./mesh-wipe";
import {
  ARCHIVE_FORMAT,
  ARCHIVE_VERSION,
  CHAIN_START,
  CONTROL_PREFIX,
  HEADER_ENTRY,
  OBJECT_PREFIX,
  REC,
  STORED_PREFIX,
  TRAILER_ENTRY,
  chainStep,
  hex,
  type ArchiveHeader,
  type ArchiveTrailer,
  type ArchivedStoredFile,
} from "./mesh-archive";
import { indexDbFor } from "../shards/mesh-index-db";

/** Bodies up to this size are collected and put in one call; larger ones stream (FixedLengthStream). */
const BUFFERED_PUT_BYTES = 1024 * 1024;
/** Control objects travel to the hub in one RPC at publish; DO RPC messages stay under 32 MiB. */
const MAX_CONTROL_TOTAL = 24 * 1024 * 1024;
/** How long an import holds the hub's claim; a crashed import's claim lapses (or --replace drops it). */
const IMPORT_CLAIM_MS = 60 * 60_000;
/** Index and stored-file rows are written in batches of this many as the import goes. */
const ROW_BATCH = 200;

export interface InstallSummary {
  mesh: string;
  controlObjects: number;
  objects: number;
  storedFiles: number;
  bytes: number;
}

/** A sync object's body as an installer takes it: in memory, or pieces that add up to `size`. */
export type InstallBody = Uint8Array | AsyncIterable<Uint8Array>;

export interface SyncObjectInput {
  path: string;
  size: number;
  modifiedAt: number;
  contentType: string;
}

export interface StoredFileInput {
  path: string;
  size: number;
  meta: ArchivedStoredFile;
}

/** What a mesh holds anywhere (hub, R2, index, stored files); false means an import may start. */
export async function meshHoldsAnything(env: Env, meshId: string): Promise<boolean> {
  const [sync, stored, rows, hubEmpty] = await Promise.all([
    env.BUCKET.list({ prefix: objectKey(meshId, "/"), limit: 1 }),
    env.BUCKET.list({ prefix: storedFileKey(meshId, "/"), limit: 1 }),
    indexDbFor(env, meshId).prepare(
      `SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM objects WHERE mesh = ?1 AND deleted_at IS NULL LIMIT 1))
            + (SELECT COUNT(*) FROM (SELECT 1 FROM stored_files WHERE mesh = ?1 LIMIT 1)) AS n`,
    )
      .bind(meshId)
      .first<{ n: number }>(),
    meshHub(env, meshId).isEmpty(),
  ]);
  return sync.objects.length > 0 || stored.objects.length > 0 || (rows?.n ?? 0) > 0 || !hubEmpty;
}

/** Removes everything of a mesh: the hub's state, R2 bodies, index rows, stored files, usage. */
export async function wipeWholeMesh(env: Env, meshId: string): Promise<void> {
  await meshHub(env, meshId).wipe();
  for (let round = 0; round < 10; round++) {
    const data = await wipeMeshData(env.BUCKET, indexDbFor(env, meshId), meshId, {
      deadline: Date.now() + DEFAULT_WIPE_BUDGET_MS,
      maxPages: DEFAULT_WIPE_MAX_PAGES,
    });
    if (data.complete) {
      await deleteMeshUsage(indexDbFor(env, meshId), meshId);
      return;
    }
  }
  throw unavailable("The mesh could not be wiped completely; run the request again.");
}

/**
 * Installs objects into an empty mesh: begin() (409 unless empty, or wipes it with `replace`),
 * then any number of putControl / putObject / putStoredFile, then publish(). On any failure call
 * rollback(), which leaves the mesh empty. Reusable by every importer (archives, upstream runtime).
 */
export class MeshInstaller {
  readonly #env: Env;
  readonly #mesh: string;
  readonly #control: ArchivedControl[] = [];
  #controlBytes = 0;
  readonly #seen = new Set<string>();
  #indexRows: ObjectEntry[] = [];
  #storedRows: StoredFileInput[] = [];
  #storedBytes = 0;
  #storedCount = 0;
  /** Etags the snapshot bodies got in this bucket (a ledger row must carry the stored body's). */
  readonly #snapshotEtags = new Map<string, { etag: string; size: number }>();
  readonly summary: InstallSummary;
  #began = false;
  /** This import's claim on the hub. */
  readonly #token = crypto.randomUUID();

  constructor(env: Env, meshId: string) {
    this.#env = env;
    this.#mesh = meshId;
    this.summary = { mesh: meshId, controlObjects: 0, objects: 0, storedFiles: 0, bytes: 0 };
  }

  /**
   * 409 unless the mesh is empty (with `replace`, it is wiped first). The hub then holds a claim
   * for this import, so a second import into the same mesh is refused before it writes anything.
   * A failure here leaves the mesh as it was (no rollback needed).
   */
  async begin(options: { replace: boolean }): Promise<void> {
    if (options.replace) await wipeWholeMesh(this.#env, this.#mesh);
    else if (await meshHoldsAnything(this.#env, this.#mesh)) {
      throw conflict(`The mesh ${this.#mesh} is not empty; wipe it first, or import with ?replace=1 (CLI --replace).`);
    }
    const claim = await meshHub(this.#env, this.#mesh).claimImport(this.#mesh, this.#token, IMPORT_CLAIM_MS);
    if (!claim.ok) throw refusalToError(claim);
    // Leftovers an empty-looking mesh can have (tombstones, folder marks, a usage row) go first.
    const leftovers = await wipeMeshData(this.#env.BUCKET, indexDbFor(this.#env, this.#mesh), this.#mesh, {
      deadline: Date.now() + DEFAULT_WIPE_BUDGET_MS,
      maxPages: DEFAULT_WIPE_MAX_PAGES,
    });
    if (leftovers.complete) await deleteMeshUsage(indexDbFor(this.#env, this.#mesh), this.#mesh);
    this.#began = true;
  }

  #claim(kind: string, path: string): void {
    if (!this.#began) throw new Error("MeshInstaller: call begin() before installing objects.");
    const key = `${kind}:${path}`;
    if (this.#seen.has(key)) throw badRequest(`The archive holds ${path} twice.`);
    this.#seen.add(key);
  }

  /** A control object for the hub (bytes verbatim); installed at publish. */
  putControl(item: ArchivedControl): void {
    this.#claim("sync", item.path);
    const cls = classifyPath(item.path);
    if (!isControlClass(cls) || cls !== item.cls) throw badRequest(`${item.path} is not a ${item.cls} control object.`);
    const limit = readConfig(this.#env).limits.control;
    if (item.body.byteLength > limit) throw payloadTooLarge(limit, "control object");
    this.#controlBytes += item.body.byteLength;
    if (this.#controlBytes > MAX_CONTROL_TOTAL) throw payloadTooLarge(MAX_CONTROL_TOTAL, "total of the mesh's control objects");
    this.#control.push(item);
    this.summary.controlObjects++;
    this.summary.bytes += item.body.byteLength;
  }

  /** A sync object (R2 m/<mesh>/), streamed into its key and indexed. */
  async putObject(input: SyncObjectInput, body: InstallBody): Promise<void> {
    this.#claim("sync", input.path);
    const cls = classifyPath(input.path);
    if (isControlClass(cls)) throw badRequest(`${input.path} is a control object; it belongs in the hub, not among the R2 objects.`);
    const limit = limitFor(readConfig(this.#env).limits, cls);
    if (input.size > limit) throw payloadTooLarge(limit, cls);
    const modifiedAt = validTime(input.modifiedAt, input.path);
    const stored = await putBody(this.#env.BUCKET, objectKey(this.#mesh, input.path), input.size, body, {
      customMetadata: toCustomMetadata({ path: input.path, cls, modifiedAt }, crypto.randomUUID()),
      httpMetadata: { contentType: input.contentType },
    });
    if (cls === "snapshot") this.#snapshotEtags.set(input.path, { etag: stored.httpEtag, size: stored.size });
    this.#indexRows.push({ path: input.path, size: stored.size, etag: stored.httpEtag, modifiedAt, cls, location: "r2", version: 0 });
    this.summary.objects++;
    this.summary.bytes += stored.size;
    if (this.#indexRows.length >= ROW_BATCH) await this.#flushIndex();
  }

  /** A durable stored file (R2 f/<mesh>/ and its D1 row, seal hash included). */
  async putStoredFile(input: StoredFileInput, body: InstallBody): Promise<void> {
    this.#claim("stored", input.path);
    const limits = readConfig(this.#env).limits;
    if (input.size > limits.storedFile) throw payloadTooLarge(limits.storedFile, "stored file");
    if (this.#storedBytes + input.size > limits.storedMeshTotal) throw payloadTooLarge(limits.storedMeshTotal, "mesh's stored files");
    const stored = await putBody(this.#env.BUCKET, storedFileKey(this.#mesh, input.path), input.size, body, {
      customMetadata: { path: input.path, device: input.meta.uploadedBy },
      httpMetadata: { contentType: input.meta.contentType },
    });
    this.#storedRows.push({ ...input, meta: { ...input.meta, etag: stored.httpEtag } });
    this.#storedBytes += stored.size;
    this.#storedCount++;
    this.summary.storedFiles++;
    this.summary.bytes += stored.size;
    if (this.#storedRows.length >= ROW_BATCH) await this.#flushStored();
  }

  async #flushIndex(): Promise<void> {
    const rows = this.#indexRows;
    this.#indexRows = [];
    if (rows.length === 0) return;
    const db = indexDbFor(this.#env, this.#mesh);
    const payload = rows.map((e) => ({ p: e.path, d: parentOf(e.path), n: nameOf(e.path), s: e.size, e: e.etag, m: e.modifiedAt, c: e.cls, l: e.location, v: e.version }));
    await db
      .prepare(
        `INSERT OR REPLACE INTO objects (mesh, path, parent, name, size, etag, modified_at, class, location, version, deleted_at)
         SELECT ?1, json_extract(value, '$.p'), json_extract(value, '$.d'), json_extract(value, '$.n'),
                json_extract(value, '$.s'), json_extract(value, '$.e'), json_extract(value, '$.m'),
                json_extract(value, '$.c'), json_extract(value, '$.l'), json_extract(value, '$.v'), NULL
         FROM json_each(?2)`,
      )
      .bind(this.#mesh, JSON.stringify(payload))
      .run();
  }

  async #flushStored(): Promise<void> {
    const rows = this.#storedRows;
    this.#storedRows = [];
    if (rows.length === 0) return;
    const db = indexDbFor(this.#env, this.#mesh);
    await db.batch(
      rows.map((r) =>
        db
          .prepare(
            `INSERT OR REPLACE INTO stored_files (mesh, path, name, size, etag, content_type, uploaded_by, uploaded_at, modified_at,
                                               last_accessed_at, use_count, plaintext_size, taint, seal_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)`,
          )
          .bind(this.#mesh, r.path, nameOf(r.path), r.size, r.meta.etag, r.meta.contentType, r.meta.uploadedBy, r.meta.uploadedAt,
            r.meta.modifiedAt, r.meta.lastAccessedAt, r.meta.useCount, r.meta.plaintextSize, r.meta.taint, r.meta.sealHash),
      ),
    );
  }

  /**
   * Publishes: the hub installs the committed state (all or nothing; listings take control objects
   * from the hub), then the index's last rows land and the mesh root is marked indexed (listings
   * are exact without a fill), and the usage row is written. Every committed snapshot's body must have been installed.
   */
  async publish(roots: ArchivedRoot[], snapshots: ArchivedSnapshot[]): Promise<InstallSummary> {
    const installedSnapshots = snapshots.map((s) => {
      const body = this.#snapshotEtags.get(s.path);
      if (body === undefined) throw badRequest(`The committed snapshot ${s.path} has no body in the archive.`);
      return { ...s, etag: body.etag, size: body.size };
    });
    const result = await meshHub(this.#env, this.#mesh).installState(this.#mesh, this.#token, this.#control, roots, installedSnapshots);
    if (!result.ok) throw refusalToError(result);
    await this.#flushIndex();
    await this.#flushStored();
    const now = Date.now();
    const db = indexDbFor(this.#env, this.#mesh);
    await db.batch([
      db.prepare(`INSERT OR REPLACE INTO indexed_folders (mesh, folder, indexed_at) VALUES (?1, '/', ?2)`).bind(this.#mesh, now),
      db
        .prepare(
          `INSERT OR REPLACE INTO mesh_usage (mesh, stored_bytes, stored_count, last_write_at) VALUES (?1, ?2, ?3, ?4)`,
        )
        .bind(this.#mesh, this.#storedBytes, this.#storedCount, now),
    ]);
    return this.summary;
  }

  /** Leaves the mesh empty again (best effort: a failure here is logged; rerun with replace). */
  async rollback(): Promise<void> {
    try {
      await wipeWholeMesh(this.#env, this.#mesh);
    } catch (err) {
      console.error(JSON.stringify({ level: "error", msg: "import rollback failed", mesh: this.#mesh, error: String(err) }));
    }
  }
}

function limitFor(limits: ReturnType<typeof readConfig>["limits"], cls: PathClass): number {
  if (cls === "change") return limits.change;
  if (cls === "snapshot") return limits.snapshot;
  return limits.other;
}

function validTime(ms: number, path: string): number {
  if (!Number.isSafeInteger(ms) || ms <= 0) throw badRequest(`The modified time of ${path} is not a positive epoch-ms integer.`);
  return ms;
}

/** Puts a body of known size: small ones in one buffer, large ones streamed (never held whole). */
async function putBody(bucket: R2Bucket, key: string, size: number, body: InstallBody, options: R2PutOptions): Promise<R2Object> {
  if (body instanceof Uint8Array) {
    if (body.byteLength !== size) throw badRequest(`The body of ${key} is not ${size} bytes.`);
    return bucket.put(key, body, options);
  }
  if (size <= BUFFERED_PUT_BYTES) {
    const bytes = new Uint8Array(size);
    let at = 0;
    for await (const chunk of body) {
      if (at + chunk.byteLength > size) throw badRequest(`The body of ${key} is longer than ${size} bytes.`);
      bytes.set(chunk, at);
      at += chunk.byteLength;
    }
    if (at !== size) throw badRequest(`The body of ${key} is shorter than ${size} bytes.`);
    return bucket.put(key, bytes, options);
  }
  const fixed = new FixedLengthStream(size);
  const put = bucket.put(key, fixed.readable, options);
  // A put that fails early must not leave the feeding loop waiting on backpressure forever.
  put.catch(() => undefined);
  const writer = fixed.writable.getWriter();
  writer.closed.catch(() => undefined);
  try {
    for await (const chunk of body) await writer.write(chunk);
    await writer.close();
  } catch (err) {
    await writer.abort(err).catch(() => undefined);
    await put.catch(() => undefined);
    throw err;
  }
  return put;
}

// ---- the archive importer ----

const MAX_HEADER_ENTRY = 16 * 1024 * 1024;
/** The hub stores at most 2 MB per value, so no control object can be larger. */
const MAX_CONTROL_ENTRY = 2_000_000;
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** The path an entry stands for: "control/MyApp/x" -> "/MyApp/x", normalized or refused. */
function pathOf(name: string, prefix: string): string {
  const raw = name.slice(prefix.length);
  let path: string;
  try {
    path = normalizeFilePath(raw);
  } catch (err) {
    throw badRequest(`The archive entry ${JSON.stringify(name)} does not name a valid path: ${(err as Error).message}`);
  }
  if (path !== raw) throw badRequest(`The archive entry ${JSON.stringify(name)} is not a normalized path.`);
  return path;
}

function parseJson<T>(bytes: Uint8Array, what: string): T {
  try {
    return JSON.parse(decoder.decode(bytes)) as T;
  } catch {
    throw badRequest(`The archive is corrupt: its ${what} is not JSON.`);
  }
}

function record(header: TarEntryHeader, key: string): string {
  const value = header.records[key];
  if (value === undefined) throw badRequest(`The archive entry ${header.name} lacks its ${key} record.`);
  return value;
}

/** Reads an entry body whole (only for small entries: header, trailer, control objects). */
async function readSmall(reader: ByteReader, header: TarEntryHeader): Promise<Uint8Array> {
  const bytes = (await reader.exact(header.size)) ?? new Uint8Array(0);
  if (bytes.byteLength !== header.size) throw badRequest("The archive is corrupt: it ends in the middle of an entry (truncated).");
  await reader.skip(padding(header.size));
  return bytes;
}

/** An entry body as pieces, hashed on the way through; `sha256()` once it has been consumed. */
function hashedPieces(reader: ByteReader, size: number): { body: AsyncIterable<Uint8Array>; sha256(): Promise<string> } {
  const digest = new crypto.DigestStream("SHA-256");
  const writer = digest.getWriter();
  let done = false;
  return {
    body: (async function* () {
      for await (const piece of reader.chunks(size)) {
        await writer.write(piece);
        yield piece;
      }
      await writer.close();
      done = true;
    })(),
    async sha256() {
      if (!done) throw badRequest("The archive is corrupt: an entry body was not read to its end.");
      return hex(await digest.digest);
    },
  };
}

function validStored(raw: unknown, name: string): ArchivedStoredFile {
  const v = raw as Partial<ArchivedStoredFile> | null;
  const int = (x: unknown) => typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
  const ok =
    v !== null &&
    typeof v === "object" &&
    typeof v.contentType === "string" &&
    typeof v.uploadedBy === "string" &&
    int(v.uploadedAt) &&
    int(v.modifiedAt) &&
    (v.lastAccessedAt === null || int(v.lastAccessedAt)) &&
    int(v.useCount) &&
    (v.plaintextSize === null || int(v.plaintextSize)) &&
    (v.taint === null || typeof v.taint === "string") &&
    (v.sealHash === null || (typeof v.sealHash === "string" && /^[0-9a-f]{64}$/.test(v.sealHash)));
  if (!ok) throw badRequest(`The archive entry ${name} has a malformed ${REC.stored} record.`);
  return { etag: typeof v.etag === "string" ? v.etag : "", ...v } as ArchivedStoredFile;
}

function validHeader(raw: ArchiveHeader): ArchiveHeader {
  if (raw === null || typeof raw !== "object" || raw.format !== ARCHIVE_FORMAT) {
    throw badRequest(`The archive is not a ${ARCHIVE_FORMAT}.`);
  }
  if (raw.version !== ARCHIVE_VERSION) throw badRequest(`The archive is version ${String(raw.version)}; this server reads version ${ARCHIVE_VERSION}.`);
  if (!Array.isArray(raw.roots) || !Array.isArray(raw.snapshots)) throw badRequest("The archive header lacks its roots or snapshots.");
  return raw;
}

/**
 * Imports a tar archive (docs/ARCHIVE.md) into an empty mesh, streaming every body into R2.
 * 409 when the mesh is not empty (unless `replace`), 400 for a truncated or corrupt archive, and
 * then the mesh is left empty.
 */
export async function importMeshArchive(
  env: Env,
  meshId: string,
  stream: ReadableStream<Uint8Array>,
  options: { replace: boolean },
): Promise<InstallSummary> {
  const installer = new MeshInstaller(env, meshId);
  await installer.begin(options);
  const reader = new ByteReader(stream);
  try {
    const summary = await readArchiveInto(reader, installer);
    return summary;
  } catch (err) {
    await reader.cancel();
    await installer.rollback();
    if (err instanceof HttpError) throw err;
    console.error(JSON.stringify({ level: "error", msg: "mesh import failed", mesh: meshId, error: String(err) }));
    throw unavailable("The import failed on the server's side and was rolled back; retry.");
  }
}

async function readArchiveInto(reader: ByteReader, installer: MeshInstaller): Promise<InstallSummary> {
  const first = await readEntryHeader(reader);
  if (first === null || first.name !== HEADER_ENTRY) throw badRequest(`The archive does not start with ${HEADER_ENTRY}.`);
  if (first.size > MAX_HEADER_ENTRY) throw badRequest("The archive header entry is too large.");
  const headerBytes = await readSmall(reader, first);
  const header = validHeader(parseJson<ArchiveHeader>(headerBytes, "header"));
  let chain = await chainStep(CHAIN_START, first.name, first.size, first.records, hex(await crypto.subtle.digest("SHA-256", headerBytes)));
  let entries = 0;
  let bytes = 0;
  for (;;) {
    const entry = await readEntryHeader(reader);
    if (entry === null) throw badRequest(`The archive ends without its ${TRAILER_ENTRY} (truncated).`);
    if (entry.name === TRAILER_ENTRY) {
      const trailer = parseJson<ArchiveTrailer>(await readSmall(reader, entry), "trailer");
      if (trailer.entries !== entries || trailer.bytes !== bytes || trailer.chain !== chain) {
        throw badRequest("The archive is corrupt: its contents do not match the digest in its trailer.");
      }
      if ((await readEntryHeader(reader)) !== null) throw badRequest(`The archive has entries after its ${TRAILER_ENTRY}.`);
      if (!(await reader.drainZeros())) throw badRequest("The archive has data after its end-of-archive marker.");
      return installer.publish(header.roots, header.snapshots);
    }
    let sha256: string;
    if (entry.name.startsWith(`${CONTROL_PREFIX}/`)) {
      const path = pathOf(entry.name, CONTROL_PREFIX);
      // Checked before the body is read into memory; the installer applies the configured limit.
      if (entry.size > MAX_CONTROL_ENTRY) throw payloadTooLarge(MAX_CONTROL_ENTRY, "control object");
      const body = await readSmall(reader, entry);
      sha256 = hex(await crypto.subtle.digest("SHA-256", body));
      if (sha256 !== record(entry, REC.sha256)) throw badRequest(`The archive is corrupt: the bytes of ${path} do not match their SHA-256.`);
      const state = entry.records[REC.state];
      installer.putControl({
        path,
        cls: record(entry, REC.cls) as ControlClass,
        body,
        sha256,
        modifiedAt: Number(record(entry, REC.modified)),
        state: state === "committed" ? "committed" : null,
      });
    } else if (entry.name.startsWith(`${OBJECT_PREFIX}/`)) {
      const path = pathOf(entry.name, OBJECT_PREFIX);
      const pieces = hashedPieces(reader, entry.size);
      await installer.putObject(
        { path, size: entry.size, modifiedAt: Number(record(entry, REC.modified)), contentType: entry.records[REC.contentType] ?? "application/octet-stream" },
        pieces.body,
      );
      sha256 = await pieces.sha256();
      await reader.skip(padding(entry.size));
    } else if (entry.name.startsWith(`${STORED_PREFIX}/`)) {
      const path = pathOf(entry.name, STORED_PREFIX);
      let meta: ArchivedStoredFile;
      try {
        meta = validStored(JSON.parse(record(entry, REC.stored)), entry.name);
      } catch (err) {
        if (err instanceof HttpError) throw err;
        throw badRequest(`The archive entry ${entry.name} has a malformed ${REC.stored} record.`);
      }
      const pieces = hashedPieces(reader, entry.size);
      await installer.putStoredFile({ path, size: entry.size, meta }, pieces.body);
      sha256 = await pieces.sha256();
      await reader.skip(padding(entry.size));
    } else {
      throw badRequest(`The archive holds an unknown entry ${JSON.stringify(entry.name)}.`);
    }
    chain = await chainStep(chain, entry.name, entry.size, entry.records, sha256);
    entries++;
    bytes += entry.size;
  }
}
