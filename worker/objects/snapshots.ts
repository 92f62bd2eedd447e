// Snapshots (`mainline/*`): bodies stream into R2, while the hub tracks candidate/committed
// state and leases (PROTOCOL.md section 3). The lease is taken BEFORE any byte reaches R2, so
// of two concurrent different-bytes PUTs only the owner stores; the other only hashes its body.
// A body without Content-Length (R2 wants a known length for one put) goes up as a multipart
// upload, one fixed-size part at a time, so a 100 MiB snapshot never sits in the Worker's memory.
import type { Env } from "../env";
import type { HubRefusal, SnapshotRecord } from "../../durable-objects/hub-api";
import { meshHub, refusalToError } from "../hub-client";
import { assertDeclaredWithin, declaredLength, readBodyWithin, type SizedBody } from "../lib/body";
import { readConfig } from "../lib/config";
import { badRequest, conflict, HttpError, payloadTooLarge, unavailable } from "../lib/errors";
import { objectKey } from "../lib/paths";
import type { ObjectEntry, Precondition, WriteOutcome } from "./object-types";
import { upsertEntry } from "./object-index";
import { writeTouchIntervalMs } from "./usage";
import { SYNC_OBJECT_CONTENT_TYPE, headSyncObject, putSyncObject, toCustomMetadata } from "./r2-objects";
import { indexDbFor } from "../shards/mesh-index-db";

const WHAT = "snapshot";
/** How long a non-owner waits for the lease owner's upload to finish before answering 409. */
const SETTLE_TIMEOUT_MS = 20_000;
const SETTLE_POLL_MAX_MS = 200;
/**
 * Multipart part size: R2 wants every part but the last of one size, at least 5 MiB. The Worker
 * holds at most one part (plus one request chunk) in memory; 100 MiB is 13 parts.
 */
export const PART_BYTES = 8 * 1024 * 1024;
/** The hub holds a sealed upload's name this long while R2 runs complete() (usually well under 1 s). */
const COMPLETE_WINDOW_MS = 60_000;

type Hub = ReturnType<typeof meshHub>;

function hex(buffer: ArrayBuffer): string {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

function unwrap<R extends { ok: boolean }>(result: R): Extract<R, { ok: true }> {
  if (!result.ok) throw refusalToError(result as unknown as HubRefusal);
  return result as Extract<R, { ok: true }>;
}

interface HashedBody {
  sized: SizedBody;
  /** Resolves once the whole body went through (after R2 consumed it). */
  sha256(): Promise<string>;
}

/**
 * A body of declared length (or none at all) as R2 wants it, counted against the limit and hashed
 * on the way through. Chunked bodies take the multipart path instead (storeChunked).
 */
async function hashedBody(request: Request, limit: number): Promise<HashedBody> {
  const length = assertDeclaredWithin(request, limit, WHAT);
  if (length === null || request.body === null) {
    const bytes = await readBodyWithin(request, limit, WHAT);
    const digest = hex(await crypto.subtle.digest("SHA-256", bytes));
    return { sized: { body: bytes, length: bytes.byteLength, failure: () => null }, sha256: async () => digest };
  }
  const digestStream = new crypto.DigestStream("SHA-256");
  const digestWriter = digestStream.getWriter();
  let seen = 0;
  let ended = false;
  const counted = request.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      async transform(chunk, controller) {
        seen += chunk.byteLength;
        if (seen > limit) {
          controller.error(payloadTooLarge(limit, WHAT));
          return;
        }
        await digestWriter.write(chunk);
        controller.enqueue(chunk);
      },
      async flush() {
        ended = true;
        await digestWriter.close();
      },
    }),
  );
  return {
    sized: {
      body: counted.pipeThrough(new FixedLengthStream(length)),
      length,
      failure: () => {
        if (seen > limit) return payloadTooLarge(limit, WHAT);
        if (seen > length || (ended && seen !== length)) {
          return badRequest(`The body did not match its Content-Length of ${length} bytes.`);
        }
        return null;
      },
    },
    sha256: async () => hex(await digestStream.digest),
  };
}

/** Hashes a body without storing it (the non-owner's side), enforcing the same limit. */
async function hashOnly(request: Request, limit: number): Promise<string> {
  assertDeclaredWithin(request, limit, WHAT);
  if (request.body === null) return hex(await crypto.subtle.digest("SHA-256", new Uint8Array(0)));
  const digestStream = new crypto.DigestStream("SHA-256");
  let seen = 0;
  try {
    await request.body
      .pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            seen += chunk.byteLength;
            if (seen > limit) controller.error(payloadTooLarge(limit, WHAT));
            else controller.enqueue(chunk);
          },
        }),
      )
      .pipeTo(digestStream);
  } catch (err) {
    if (seen > limit) throw payloadTooLarge(limit, WHAT);
    if (err instanceof HttpError) throw err;
    throw badRequest("The request body could not be read.");
  }
  return hex(await digestStream.digest);
}

function snapshotEntry(record: SnapshotRecord): ObjectEntry {
  return {
    path: record.path,
    size: record.size,
    etag: record.etag,
    modifiedAt: record.modifiedAt,
    cls: "snapshot",
    location: "r2",
    version: 0,
  };
}

async function indexSnapshot(env: Env, meshId: string, entry: ObjectEntry): Promise<void> {
  try {
    await upsertEntry(indexDbFor(env, meshId), meshId, entry, writeTouchIntervalMs(readConfig(env)));
  } catch (err) {
    console.error(JSON.stringify({ level: "error", msg: "index write failed", mesh: meshId, error: String(err) }));
    throw unavailable("The object index did not accept the write; retry.");
  }
}

interface StoredBody {
  etag: string;
  size: number;
  sha256: string;
}

/**
 * Taken right AFTER the lease was granted and BEFORE the body is read: a put conditioned on it can
 * only replace bytes this owner saw, so an earlier owner whose lease lapsed mid-upload can never
 * clobber a later one's.
 */
async function ownerCondition(env: Env, meshId: string, path: string): Promise<R2Conditional> {
  let current: R2Object | null;
  try {
    current = await headSyncObject(env, meshId, path);
  } catch (err) {
    throw storageFailure(meshId, "head", err);
  }
  return current === null ? { etagDoesNotMatch: "*" } : { etagMatches: current.etag };
}

/** One conditional put of a body whose length is known (declared, or read because it is small). */
async function putOnce(
  env: Env,
  meshId: string,
  path: string,
  sized: SizedBody,
  onlyIf: R2Conditional,
): Promise<R2Object> {
  const stored = await putSyncObject(env, meshId, { path, cls: "snapshot", modifiedAt: Date.now() }, sized, { onlyIf });
  if (stored === null) throw conflict(`Another upload of ${path} landed while this one was streaming; retry.`);
  return stored;
}

async function storeSized(
  env: Env,
  meshId: string,
  path: string,
  request: Request,
  limit: number,
  onlyIf: R2Conditional,
): Promise<StoredBody> {
  const body = await hashedBody(request, limit);
  const stored = await putOnce(env, meshId, path, body.sized, onlyIf);
  return { etag: stored.httpEtag, size: stored.size, sha256: await body.sha256() };
}

/** Collects request chunks and cuts them into parts of exactly `size` bytes. */
class PartCutter {
  readonly #size: number;
  #chunks: Uint8Array[] = [];
  #held = 0;

  constructor(size: number) {
    this.#size = size;
  }

  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.#chunks.push(chunk);
    this.#held += chunk.byteLength;
  }

  get full(): boolean {
    return this.#held >= this.#size;
  }

  /** The next full part; the rest of a chunk that crosses the boundary stays for the next one. */
  take(): Uint8Array {
    return this.#cut(this.#size);
  }

  /** Everything still held (less than one part). */
  rest(): Uint8Array {
    return this.#cut(this.#held);
  }

  #cut(length: number): Uint8Array {
    const part = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      const chunk = this.#chunks[0]!;
      const used = Math.min(chunk.byteLength, length - filled);
      part.set(chunk.subarray(0, used), filled);
      filled += used;
      if (used === chunk.byteLength) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(used);
    }
    this.#held -= length;
    return part;
  }
}

/** Custom metadata as putSyncObject writes it (r2-objects.ts), so the index can be rebuilt from R2. */
function snapshotMetadata(path: string, modifiedAt: number): Record<string, string> & { write: string } {
  const write = crypto.randomUUID();
  return { ...toCustomMetadata({ path, cls: "snapshot", modifiedAt }, write), write };
}

function storageFailure(meshId: string, what: string, err: unknown): HttpError {
  console.error(JSON.stringify({ level: "error", msg: `R2 ${what} failed`, mesh: meshId, error: String(err) }));
  return unavailable("Storage did not accept the write; retry.");
}

/** One multipart upload of a snapshot body, created with its first part. */
class PartUploader {
  readonly #env: Env;
  readonly #meshId: string;
  readonly #path: string;
  readonly #metadata: ReturnType<typeof snapshotMetadata>;
  #upload: R2MultipartUpload | null = null;
  readonly #parts: R2UploadedPart[] = [];

  constructor(env: Env, meshId: string, path: string, modifiedAt: number) {
    this.#env = env;
    this.#meshId = meshId;
    this.#path = path;
    this.#metadata = snapshotMetadata(path, modifiedAt);
  }

  get started(): boolean {
    return this.#upload !== null;
  }

  async send(bytes: Uint8Array): Promise<void> {
    try {
      this.#upload ??= await this.#env.BUCKET.createMultipartUpload(objectKey(this.#meshId, this.#path), {
        customMetadata: this.#metadata,
        httpMetadata: { contentType: SYNC_OBJECT_CONTENT_TYPE },
      });
      this.#parts.push(await this.#upload.uploadPart(this.#parts.length + 1, bytes));
    } catch (err) {
      throw storageFailure(this.#meshId, "multipart upload", err);
    }
  }

  /** complete(); a lost answer is resolved by the write id, as putSyncObject does. */
  async complete(): Promise<R2Object> {
    const upload = this.#upload;
    if (upload === null) throw new Error("PartUploader.complete() before any part was sent; send a part first.");
    try {
      const stored = await upload.complete(this.#parts);
      this.#upload = null;
      return stored;
    } catch (err) {
      const landed = await this.#env.BUCKET.head(objectKey(this.#meshId, this.#path)).catch(() => null);
      if (landed !== null && landed.customMetadata?.write === this.#metadata.write) {
        this.#upload = null;
        return landed;
      }
      throw storageFailure(this.#meshId, "multipart complete", err);
    }
  }

  /** Nothing of an aborted upload is ever visible as an object. */
  async abort(): Promise<void> {
    const upload = this.#upload;
    this.#upload = null;
    if (upload !== null) await upload.abort().catch(() => undefined);
  }
}

/**
 * A body without Content-Length, owner side. It is hashed and counted as it passes; the first
 * PART_BYTES are held back, so a small body is one put under `onlyIf` like any other. A larger one
 * becomes a multipart upload: one part in memory at a time, aborted the moment the count passes
 * the limit (413) or anything fails. complete() cannot be made conditional, so the hub seals the
 * lease first: the owner must still hold it, and nobody can take the name over until complete()
 * returned (the single put's etag condition gives the same guarantee).
 */
async function storeChunked(
  env: Env,
  hub: Hub,
  meshId: string,
  path: string,
  token: string,
  body: ReadableStream<Uint8Array>,
  limit: number,
  onlyIf: R2Conditional,
): Promise<StoredBody> {
  const digestStream = new crypto.DigestStream("SHA-256");
  const digest = digestStream.getWriter();
  const reader = body.getReader();
  const cutter = new PartCutter(PART_BYTES);
  const uploader = new PartUploader(env, meshId, path, Date.now());
  let seen = 0;
  try {
    for (;;) {
      let chunk: Uint8Array;
      try {
        const next = await reader.read();
        if (next.done) break;
        chunk = next.value;
      } catch {
        throw badRequest("The request body could not be read.");
      }
      seen += chunk.byteLength;
      if (seen > limit) throw payloadTooLarge(limit, WHAT);
      await digest.write(chunk);
      cutter.push(chunk);
      while (cutter.full) await uploader.send(cutter.take());
    }
    await digest.close();
    const sha256 = hex(await digestStream.digest);

    if (!uploader.started) {
      const bytes = cutter.rest();
      const stored = await putOnce(env, meshId, path, { body: bytes, length: bytes.byteLength, failure: () => null }, onlyIf);
      return { etag: stored.httpEtag, size: stored.size, sha256 };
    }
    const last = cutter.rest();
    if (last.byteLength > 0) await uploader.send(last);
    unwrap(await hub.sealSnapshot(meshId, path, token, COMPLETE_WINDOW_MS));
    const stored = await uploader.complete();
    return { etag: stored.httpEtag, size: stored.size, sha256 };
  } catch (err) {
    await reader.cancel().catch(() => undefined);
    await uploader.abort();
    throw err;
  }
}

/** Streams the request body into R2 under the hub's lease rules; 201/200/204, or throws 409/412/413. */
export async function putSnapshot(
  env: Env,
  meshId: string,
  path: string,
  request: Request,
  pre: Precondition,
): Promise<WriteOutcome> {
  const config = readConfig(env);
  const limit = config.limits.snapshot;
  assertDeclaredWithin(request, limit, WHAT);
  const hub = meshHub(env, meshId);
  const opening = unwrap(await hub.openSnapshot(meshId, path, pre, config.candidateLeaseMs));

  if (opening.role === "owner") {
    let etag: string;
    let size: number;
    let sha256: string;
    try {
      const onlyIf = await ownerCondition(env, meshId, path);
      const stored =
        request.body !== null && declaredLength(request) === null
          ? await storeChunked(env, hub, meshId, path, opening.token, request.body, limit, onlyIf)
          : await storeSized(env, meshId, path, request, limit, onlyIf);
      ({ etag, size, sha256 } = stored);
    } catch (err) {
      // Release the lease at once: the client will retry, and must not wait out the lease.
      await hub.abortSnapshot(meshId, path, opening.token).catch(() => undefined);
      throw err;
    }
    const finished = unwrap(await hub.finishSnapshot(meshId, path, opening.token, sha256, size, etag));
    const entry = snapshotEntry(finished.record);
    await indexSnapshot(env, meshId, entry);
    return { status: opening.status, changed: true, entry };
  }

  const sha256 = await hashOnly(request, limit);
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  for (let delay = 10; ; delay = Math.min(delay * 2, SETTLE_POLL_MAX_MS)) {
    const comparison = unwrap(await hub.compareSnapshot(meshId, path, sha256));
    if (comparison.settled) {
      // An identical repeat still re-upserts the index, so a retry repairs a failed index write.
      const entry = snapshotEntry(comparison.record);
      await indexSnapshot(env, meshId, entry);
      return { status: 200, changed: false, entry };
    }
    if (Date.now() >= deadline) break;
    await scheduler.wait(delay);
  }
  throw conflict(`Another upload of ${path} holds the lease and has not finished; retry later.`);
}

/**
 * Throws 409 if any of the paths is the snapshot the committed manifest names (or is still being
 * uploaded). Otherwise the hub has claimed them all in the same step: from here no pointer commit
 * can name them (409), so none can become live while the caller deletes their bodies. Call it
 * before touching anything, and forgetSnapshots once the bodies are gone.
 */
export async function assertSnapshotsDeletable(env: Env, meshId: string, paths: readonly string[]): Promise<void> {
  if (paths.length === 0) return;
  unwrap(await meshHub(env, meshId).claimSnapshotsForDeletion(meshId, [...paths]));
}

/** Marks claimed snapshots deleted once their bodies are gone (still never committable). */
export async function forgetSnapshots(env: Env, meshId: string, paths: readonly string[]): Promise<void> {
  if (paths.length === 0) return;
  await meshHub(env, meshId).forgetSnapshots(meshId, [...paths]);
}
