// Snapshots (`mainline/*`): bodies stream into R2, while the hub tracks candidate/committed
// state and leases (PROTOCOL.md section 3). The lease is taken BEFORE any byte reaches R2, so
// of two concurrent different-bytes PUTs only the owner stores; the other only hashes its body.
import type { Env } from "../env";
import type { HubRefusal, SnapshotRecord } from "../../durable-objects/hub-api";
import { meshHub, refusalToError } from "../hub-client";
import { assertDeclaredWithin, readBodyWithin, type SizedBody } from "../lib/body";
import { readConfig } from "../lib/config";
import { badRequest, conflict, HttpError, payloadTooLarge, unavailable } from "../lib/errors";
import type { ObjectEntry, Precondition, WriteOutcome } from "./object-types";
import { upsertEntry } from "./object-index";
import { headSyncObject, putSyncObject } from "./r2-objects";

const WHAT = "snapshot";
/** How long a non-owner waits for the lease owner's upload to finish before answering 409. */
const SETTLE_TIMEOUT_MS = 20_000;
const SETTLE_POLL_MAX_MS = 200;

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
 * The body as R2 wants it (known length), counted against the limit and hashed on the way
 * through. Without Content-Length it is read whole, bounded by the limit.
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
    await upsertEntry(env.DB, meshId, entry);
  } catch (err) {
    console.error(JSON.stringify({ level: "error", msg: "index write failed", mesh: meshId, error: String(err) }));
    throw unavailable("The object index did not accept the write; retry.");
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
      // Seen AFTER the lease was granted: a put conditioned on it can only replace bytes this owner
      // saw, so an earlier owner whose lease lapsed mid-upload can never clobber a later one's.
      const current = await headSyncObject(env, meshId, path);
      const body = await hashedBody(request, limit);
      const stored = await putSyncObject(env, meshId, { path, cls: "snapshot", modifiedAt: Date.now() }, body.sized, {
        onlyIf: current === null ? { etagDoesNotMatch: "*" } : { etagMatches: current.etag },
        contentType: request.headers.get("Content-Type"),
      });
      if (stored === null) throw conflict(`Another upload of ${path} landed while this one was streaming; retry.`);
      etag = stored.httpEtag;
      size = stored.size;
      sha256 = await body.sha256();
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

/** Throws 409 if any of the paths is the snapshot the committed manifest names. */
export async function assertSnapshotsDeletable(env: Env, meshId: string, paths: readonly string[]): Promise<void> {
  if (paths.length === 0) return;
  unwrap(await meshHub(env, meshId).snapshotsDeletable(meshId, [...paths]));
}

/** Drops the hub's tracking of snapshots once their bodies are deleted. */
export async function forgetSnapshots(env: Env, meshId: string, paths: readonly string[]): Promise<void> {
  if (paths.length === 0) return;
  await meshHub(env, meshId).forgetSnapshots(meshId, [...paths]);
}
