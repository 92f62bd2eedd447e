// Export: streams a mesh as a tar archive (docs/ARCHIVE.md). The hub's committed state is read
// in one atomic step first; then every live R2 sync object and every stored file is piped through
// chunk by chunk, so a 100 MiB snapshot never sits in the Worker's memory. A failure mid-way
// aborts the stream: the archive then has no trailer, and an import refuses it.
import type { Env } from "../env";
import type { HubArchive } from "../../durable-objects/hub-api";
import { meshHub } from "../hub-client";
import { entryHeader, END_OF_ARCHIVE, padding, type TarEntryHeader } from "../lib/tar";
import { objectKey, storedFileKey } from "../lib/paths";
import { classifyPath } from "../lib/paths";
import { entryFromR2 } from "../objects/r2-objects";
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
  entryName,
  hex,
  type ArchiveHeader,
  type ArchiveTrailer,
  type ArchivedStoredFile,
} from "./mesh-archive";
import type { StoredFileRow } from "../objects/stored-files";
import { indexDbFor } from "../shards/mesh-index-db";

const encoder = new TextEncoder();
const STORED_PAGE = 100;


/** Writes entries into the response stream, hashing each body and chaining the digests. */
class ArchiveWriter {
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  #chain = CHAIN_START;
  entries = 0;
  bytes = 0;

  constructor(writable: WritableStream<Uint8Array>) {
    this.#writer = writable.getWriter();
  }

  async #emit(bytes: Uint8Array): Promise<void> {
    await this.#writer.ready;
    await this.#writer.write(bytes);
  }

  /** One entry whose body is in memory (control objects, the header and trailer). */
  async small(header: TarEntryHeader, body: Uint8Array): Promise<void> {
    await this.#emit(entryHeader(header));
    if (body.byteLength > 0) await this.#emit(body);
    await this.#emit(new Uint8Array(padding(body.byteLength)));
    this.#chain = await chainStep(this.#chain, header.name, header.size, header.records, hex(await crypto.subtle.digest("SHA-256", body)));
  }

  /** One entry piped from R2; the body must be exactly `header.size` bytes. */
  async streamed(header: TarEntryHeader, body: ReadableStream<Uint8Array>): Promise<void> {
    await this.#emit(entryHeader(header));
    const digest = new crypto.DigestStream("SHA-256");
    const digestWriter = digest.getWriter();
    let seen = 0;
    const reader = body.getReader();
    for (;;) {
      const next = await reader.read();
      if (next.done) break;
      seen += next.value.byteLength;
      if (seen > header.size) throw new Error(`R2 returned more than ${header.size} bytes for ${header.name}`);
      await digestWriter.write(next.value);
      await this.#emit(next.value);
    }
    if (seen !== header.size) throw new Error(`R2 returned ${seen} of ${header.size} bytes for ${header.name}`);
    await digestWriter.close();
    await this.#emit(new Uint8Array(padding(header.size)));
    this.#chain = await chainStep(this.#chain, header.name, header.size, header.records, hex(await digest.digest));
  }

  count(size: number): void {
    this.entries++;
    this.bytes += size;
  }

  async finish(): Promise<void> {
    const trailer: ArchiveTrailer = { entries: this.entries, bytes: this.bytes, chain: this.#chain };
    const body = encoder.encode(JSON.stringify(trailer));
    await this.#emit(entryHeader({ name: TRAILER_ENTRY, size: body.byteLength, mtime: Date.now() / 1000, records: {} }));
    await this.#emit(body);
    await this.#emit(new Uint8Array(padding(body.byteLength)));
    await this.#emit(END_OF_ARCHIVE);
    await this.#writer.close();
  }

  async abort(reason: unknown): Promise<void> {
    await this.#writer.abort(reason).catch(() => undefined);
  }
}

/**
 * What the index says about a page of R2 paths: tombstoned ones (change files in their deletion
 * window) are not exported, and a live row's modified time is the one listings show (a snapshot's
 * is when its upload finished, later than the R2 metadata's).
 */
async function indexRowsAmong(db: D1Database, meshId: string, paths: readonly string[]): Promise<Map<string, { deleted: boolean; modifiedAt: number }>> {
  const out = new Map<string, { deleted: boolean; modifiedAt: number }>();
  // 200 paths of up to 1 KiB each keep the bound JSON far below D1's value size limit.
  for (let i = 0; i < paths.length; i += 200) {
    const { results } = await db
      .prepare(`SELECT path, modified_at, deleted_at FROM objects WHERE mesh = ?1 AND path IN (SELECT value FROM json_each(?2))`)
      .bind(meshId, JSON.stringify(paths.slice(i, i + 200)))
      .all<{ path: string; modified_at: number; deleted_at: number | null }>();
    for (const r of results) out.set(r.path, { deleted: r.deleted_at !== null, modifiedAt: r.modified_at });
  }
  return out;
}

async function writeControl(out: ArchiveWriter, hub: HubArchive): Promise<void> {
  for (const item of hub.control) {
    await out.small(
      {
        name: entryName(CONTROL_PREFIX, item.path),
        size: item.body.byteLength,
        mtime: item.modifiedAt / 1000,
        records: {
          [REC.cls]: item.cls,
          [REC.modified]: String(item.modifiedAt),
          [REC.sha256]: item.sha256,
          ...(item.state === null ? {} : { [REC.state]: item.state }),
        },
      },
      item.body,
    );
    out.count(item.body.byteLength);
  }
}

/** Every live sync object in R2, one list page at a time, bodies piped. */
async function writeObjects(env: Env, meshId: string, out: ArchiveWriter, uncommitted: ReadonlySet<string>): Promise<void> {
  const prefix = objectKey(meshId, "/");
  let cursor: string | undefined;
  for (;;) {
    const page = await env.BUCKET.list({ prefix, cursor, include: ["customMetadata", "httpMetadata"] });
    const entries = page.objects.map((o) => ({ object: o, entry: entryFromR2(meshId, o) }));
    const rows = await indexRowsAmong(indexDbFor(env, meshId), meshId, entries.map((e) => e.entry.path));
    for (const { object, entry } of entries) {
      const row = rows.get(entry.path);
      if (row?.deleted === true) continue;
      const modifiedAt = row?.modifiedAt ?? entry.modifiedAt;
      // Candidate or deleted snapshots are not part of the committed state.
      if (entry.cls === "snapshot" && uncommitted.has(entry.path)) continue;
      const body = await env.BUCKET.get(object.key);
      if (body === null) continue; // deleted since the listing: no longer part of the mesh
      await out.streamed(
        {
          name: entryName(OBJECT_PREFIX, entry.path),
          size: body.size,
          mtime: modifiedAt / 1000,
          records: {
            [REC.cls]: classifyPath(entry.path),
            [REC.modified]: String(modifiedAt),
            [REC.contentType]: body.httpMetadata?.contentType ?? "application/octet-stream",
            [REC.etag]: body.httpEtag,
          },
        },
        body.body,
      );
      out.count(body.size);
    }
    if (!page.truncated) return;
    cursor = page.cursor;
  }
}

async function writeStoredFiles(env: Env, meshId: string, out: ArchiveWriter): Promise<void> {
  let after = "";
  for (;;) {
    const { results } = await indexDbFor(env, meshId).prepare(
      `SELECT path, size, etag, content_type, uploaded_by, uploaded_at, modified_at, last_accessed_at,
              use_count, plaintext_size, taint, seal_hash
       FROM stored_files WHERE mesh = ?1 AND path > ?2 ORDER BY path LIMIT ${STORED_PAGE}`,
    )
      .bind(meshId, after)
      .all<StoredFileRow>();
    for (const row of results) {
      const body = await env.BUCKET.get(storedFileKey(meshId, row.path));
      if (body === null) continue; // a row whose body is gone answers 404 to clients too
      const stored: ArchivedStoredFile = {
        etag: row.etag,
        contentType: row.content_type,
        uploadedBy: row.uploaded_by,
        uploadedAt: row.uploaded_at,
        modifiedAt: row.modified_at,
        lastAccessedAt: row.last_accessed_at,
        useCount: row.use_count,
        plaintextSize: row.plaintext_size,
        taint: row.taint,
        sealHash: row.seal_hash,
      };
      await out.streamed(
        {
          name: entryName(STORED_PREFIX, row.path),
          size: body.size,
          mtime: row.modified_at / 1000,
          records: { [REC.modified]: String(row.modified_at), [REC.stored]: JSON.stringify(stored) },
        },
        body.body,
      );
      out.count(body.size);
    }
    if (results.length < STORED_PAGE) return;
    after = results[results.length - 1]!.path;
  }
}

/**
 * Starts the export and returns the archive stream at once; the work continues while the
 * client reads (backpressure paces it). `waitUntil` keeps the isolate alive for it.
 */
export async function exportMeshArchive(env: Env, meshId: string, waitUntil: (p: Promise<unknown>) => void): Promise<ReadableStream<Uint8Array>> {
  const hub: HubArchive = await meshHub(env, meshId).exportState();
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const out = new ArchiveWriter(writable);
  const work = (async () => {
    try {
      const header: ArchiveHeader = {
        format: ARCHIVE_FORMAT,
        version: ARCHIVE_VERSION,
        mesh: meshId,
        exportedAt: new Date().toISOString(),
        roots: hub.roots,
        snapshots: hub.snapshots,
      };
      const body = encoder.encode(JSON.stringify(header));
      await out.small({ name: HEADER_ENTRY, size: body.byteLength, mtime: Date.now() / 1000, records: {} }, body);
      await writeControl(out, hub);
      await writeObjects(env, meshId, out, new Set(hub.uncommitted));
      await writeStoredFiles(env, meshId, out);
      await out.finish();
    } catch (err) {
      console.error(JSON.stringify({ level: "error", msg: "mesh export failed", mesh: meshId, error: String(err) }));
      await out.abort(err);
    }
  })();
  waitUntil(work);
  return readable;
}
