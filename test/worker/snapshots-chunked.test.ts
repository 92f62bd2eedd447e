// Snapshot PUTs without Content-Length: streamed into R2 as a multipart upload (one part in memory
// at a time), counted against the limit and hashed on the way, with the real hub, D1 and R2.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../worker/index";
import type { Env } from "../../worker/env";
import { meshHub } from "../../worker/hub-client";
import { objectKey } from "../../worker/lib/paths";
import { PART_BYTES, putSnapshot } from "../../worker/objects/snapshots";
import { chunked, getFile, indexRows, ioUrl, newMesh, post, putFile, r2Keys, randomBytes } from "./io-support";

const MiB = 1024 * 1024;
const ROOT = "/MyApp";
const snapshotPath = (epoch: number) => `${ROOT}/mainline/snapshot-${epoch}-server_relay_1.json`;

async function sha256Hex(data: ArrayBuffer | Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Calls the Worker's own default export with a modified env (e.g. a small snapshot limit). */
async function fetchWith(vars: Partial<Record<string, string>>, request: Request): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(request, { ...env, ...vars } as Env, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

/**
 * A stream that only produces when read (highWaterMark 0): `first` bytes, then it signals
 * `paused` and waits for `resume` before producing the rest.
 */
function pausingStream(body: Uint8Array, first: number) {
  let paused!: () => void;
  let resume!: () => void;
  const pausedAt = new Promise<void>((r) => (paused = r));
  const resumed = new Promise<void>((r) => (resume = r));
  let step = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        step += 1;
        if (step === 1) {
          controller.enqueue(body.slice(0, first));
          return;
        }
        paused();
        await resumed;
        controller.enqueue(body.slice(first));
        controller.close();
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, pausedAt, resume };
}

describe("PUT /file mainline snapshot without Content-Length", () => {
  it("stores a 12 MiB chunked snapshot byte-exact through a multipart upload and lists it with its size", async () => {
    const mesh = newMesh();
    const path = snapshotPath(2);
    const body = randomBytes(12 * MiB);
    const expected = await sha256Hex(body);

    const res = await putFile(mesh, path, chunked(body, 256 * 1024));
    expect(res.status).toBe(201);
    await res.arrayBuffer();

    const got = await getFile(mesh, path);
    expect(got.status).toBe(200);
    expect(got.headers.get("Content-Length")).toBe(String(12 * MiB));
    expect(await sha256Hex(await got.arrayBuffer())).toBe(expected);

    const listed = await post(mesh, "list-files", { path: `${ROOT}/mainline` });
    const files = ((await listed.json()) as { files: { name: string; size: number; etag: string }[] }).files;
    expect(files.map((f) => [f.name, f.size])).toEqual([["snapshot-2-server_relay_1.json", 12 * MiB]]);
    expect(files[0]!.etag).toBe(got.headers.get("ETag"));
    // R2 names a multipart object's part count in its etag: two parts of PART_BYTES and the rest.
    expect((await env.BUCKET.head(objectKey(mesh, path)))!.etag).toMatch(/-2$/);
    // The hash the hub compares later PUTs against covers the whole body, every part of it.
    expect((await meshHub(env, mesh).snapshotState(mesh, path))?.sha256).toBe(expected);
  });

  it("stores a chunked body of exactly one part, and one just past a part boundary, byte-exact", async () => {
    const mesh = newMesh();
    for (const [epoch, size, parts] of [
      [2, PART_BYTES, 1],
      [3, PART_BYTES + 1, 2],
    ] as const) {
      const body = randomBytes(size);
      const res = await putFile(mesh, snapshotPath(epoch), chunked(body, 1_000_000));
      expect(res.status).toBe(201);
      await res.arrayBuffer();
      const got = await getFile(mesh, snapshotPath(epoch));
      expect(await sha256Hex(await got.arrayBuffer())).toBe(await sha256Hex(body));
      expect((await env.BUCKET.head(objectKey(mesh, snapshotPath(epoch))))!.etag).toMatch(new RegExp(`-${parts}$`));
    }
  });

  it("stores a small chunked snapshot with one put, byte-exact", async () => {
    const mesh = newMesh();
    const body = randomBytes(300_000);
    const res = await putFile(mesh, snapshotPath(2), chunked(body, 7_000));
    expect(res.status).toBe(201);
    await res.arrayBuffer();
    const got = await getFile(mesh, snapshotPath(2));
    expect(new Uint8Array(await got.arrayBuffer())).toEqual(body);
    // One plain put, not a multipart upload (whose etag would carry a part count).
    expect((await env.BUCKET.head(objectKey(mesh, snapshotPath(2))))!.etag).toMatch(/^[0-9a-f]{32}$/);
  });

  it("answers 200 to an identical chunked repeat and 409 to different chunked bytes, keeping the first bytes", async () => {
    const mesh = newMesh();
    const path = snapshotPath(2);
    const body = randomBytes(PART_BYTES + 4096);
    expect((await putFile(mesh, path, chunked(body))).status).toBe(201);
    expect((await putFile(mesh, path, chunked(body))).status).toBe(200);
    const other = body.slice();
    other[other.length - 1] = other[other.length - 1]! ^ 0xff;
    const refused = await putFile(mesh, path, chunked(other));
    expect(refused.status).toBe(409);
    expect(await refused.json()).toEqual({
      error: "conflict",
      message: `Another compactor's candidate ${path} holds the lease; different bytes are refused.`,
    });
    const got = await getFile(mesh, path);
    expect(await sha256Hex(await got.arrayBuffer())).toBe(await sha256Hex(body));
  });

  it("answers 201 and 200 to two concurrent identical chunked PUTs spanning parts", async () => {
    const mesh = newMesh();
    const path = snapshotPath(2);
    const body = randomBytes(PART_BYTES + 65_536);
    const results = await Promise.all([putFile(mesh, path, chunked(body)), putFile(mesh, path, chunked(body))]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 201]);
    const got = await getFile(mesh, path);
    expect(await sha256Hex(await got.arrayBuffer())).toBe(await sha256Hex(body));
  });

  it("writes the same custom metadata as an upload with Content-Length, and stores both as application/octet-stream whatever the writer declared", async () => {
    const mesh = newMesh();
    const multipart = snapshotPath(2);
    const single = snapshotPath(3);
    const headers = { "Content-Type": "application/x-snapshot" };
    expect((await putFile(mesh, multipart, chunked(randomBytes(PART_BYTES + 1)), headers)).status).toBe(201);
    expect((await putFile(mesh, single, randomBytes(1000), headers)).status).toBe(201);

    const a = await env.BUCKET.head(objectKey(mesh, multipart));
    const b = await env.BUCKET.head(objectKey(mesh, single));
    expect(Object.keys(a!.customMetadata ?? {}).sort()).toEqual(Object.keys(b!.customMetadata ?? {}).sort());
    expect(a!.customMetadata).toMatchObject({ path: multipart, class: "snapshot" });
    expect(Number(a!.customMetadata!.modified)).toBeGreaterThan(0);
    expect(a!.httpMetadata?.contentType).toBe("application/octet-stream");
    expect(b!.httpMetadata?.contentType).toBe("application/octet-stream");
  });

  it("refuses an over-limit chunked body with 413 and leaves nothing in R2 or the index", async () => {
    const mesh = newMesh();
    const path = snapshotPath(2);
    const limit = PART_BYTES + MiB;
    // Past the first part, so a multipart upload is under way when the limit is crossed.
    const request = new Request(ioUrl(mesh, "file", path), { method: "PUT", body: chunked(randomBytes(12 * MiB)) });
    const res = await fetchWith({ LIMIT_SNAPSHOT_BYTES: String(limit) }, request);
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({
      error: "payload_too_large",
      message: `The snapshot is larger than the limit of ${limit} bytes.`,
      limit,
    });
    expect(await r2Keys(`m/${mesh}/`)).toEqual([]);
    expect(await indexRows(mesh)).toEqual([]);
    expect(await meshHub(env, mesh).snapshotState(mesh, path)).toBeNull();
    // The lease was released: a correct retry becomes the owner at once.
    const retry = await putFile(mesh, path, chunked(randomBytes(1000)));
    expect(retry.status).toBe(201);
  });

  it("refuses an over-limit chunked body that fits in one part with 413 before storing anything", async () => {
    const mesh = newMesh();
    const request = new Request(ioUrl(mesh, "file", snapshotPath(2)), { method: "PUT", body: chunked(randomBytes(3 * MiB)) });
    const res = await fetchWith({ LIMIT_SNAPSHOT_BYTES: String(MiB) }, request);
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: "payload_too_large", limit: MiB });
    expect(await r2Keys(`m/${mesh}/`)).toEqual([]);
    expect(await indexRows(mesh)).toEqual([]);
  });

  it("answers 400 when a chunked body breaks off mid-upload, stores nothing, and releases the lease", async () => {
    const mesh = newMesh();
    const path = snapshotPath(2);
    let sent = 0;
    const broken = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= PART_BYTES + MiB) {
          controller.error(new Error("client went away"));
          return;
        }
        controller.enqueue(randomBytes(MiB));
        sent += MiB;
      },
    });
    await expect(putSnapshot(env, mesh, path, new Request("http://x/", { method: "PUT", body: broken }), {})).rejects.toMatchObject({
      status: 400,
      code: "bad_request",
    });
    expect(await r2Keys(`m/${mesh}/`)).toEqual([]);
    expect((await putFile(mesh, path, chunked(randomBytes(1000)))).status).toBe(201);
  });

  it("never completes a multipart upload whose lease was taken over, and keeps the next owner's bytes", async () => {
    const mesh = newMesh();
    const shortLease = { ...env, CANDIDATE_LEASE_MS: "0" } as Env;
    const path = snapshotPath(2);
    const late = pausingStream(randomBytes(PART_BYTES + 1000), PART_BYTES);
    const lateOutcome = putSnapshot(shortLease, mesh, path, new Request("http://x/", { method: "PUT", body: late.stream }), {}).then(
      () => null,
      (err: unknown) => err,
    );
    // The late owner has uploaded its first part and waits for the rest of its body.
    await late.pausedAt;
    const next = await putSnapshot(shortLease, mesh, path, new Request("http://x/", { method: "PUT", body: "next owner" }), {});
    expect(next.status).toBe(201);
    late.resume();
    expect(await lateOutcome).toMatchObject({
      status: 409,
      code: "conflict",
      message: `The lease on ${path} lapsed before the upload finished; another writer took it over.`,
    });
    const got = await getFile(mesh, path);
    expect(await got.text()).toBe("next owner");
    expect((await meshHub(env, mesh).snapshotState(mesh, path))?.sha256).toBe(await sha256Hex(new TextEncoder().encode("next owner")));
  });
});

describe("MeshHub sealSnapshot (before a multipart complete)", () => {
  it("holds a sealed lease against takeover even when the lease itself had lapsed, and refuses a stale token with 409", async () => {
    const mesh = newMesh();
    const path = snapshotPath(2);
    const hub = meshHub(env, mesh);
    const opening = await hub.openSnapshot(mesh, path, undefined, 0);
    if (!opening.ok || opening.role !== "owner") throw new Error("expected the first PUT to own the lease");
    expect(await hub.sealSnapshot(mesh, path, "not-the-token", 60_000)).toEqual({
      ok: false,
      code: "conflict",
      message: `The lease on ${path} lapsed before the upload finished; another writer took it over.`,
    });
    expect(await hub.sealSnapshot(mesh, path, opening.token, 60_000)).toEqual({ ok: true });
    // The configured lease is 0 ms, yet nobody takes the name over while complete() runs.
    expect(await hub.openSnapshot(mesh, path, undefined, 0)).toEqual({ ok: true, role: "compare" });
    expect(await hub.finishSnapshot(mesh, path, opening.token, "ab".repeat(32), 1, '"e"')).toMatchObject({ ok: true });
  });
});

/** The real bucket, except that one multipart `method` call throws, before or after it ran. */
function failingMultipart(real: R2Bucket, method: "uploadPart" | "complete", when: "before" | "after"): R2Bucket {
  let fired = false;
  const failOnce = (upload: R2MultipartUpload): R2MultipartUpload =>
    new Proxy(upload, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (typeof value !== "function") return value;
        const fn = value as (...a: unknown[]) => Promise<unknown>;
        if (prop !== method) return fn.bind(target);
        return async (...args: unknown[]) => {
          if (fired) return fn.apply(target, args);
          fired = true;
          if (when === "after") await fn.apply(target, args);
          throw new Error(`injected ${method} failure`);
        };
      },
    });
  return new Proxy(real, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== "function") return value;
      const fn = value as (...a: unknown[]) => Promise<unknown>;
      if (prop === "createMultipartUpload") {
        return async (...args: unknown[]) => failOnce((await fn.apply(target, args)) as R2MultipartUpload);
      }
      return fn.bind(target);
    },
  });
}

describe("PUT /file mainline snapshot without Content-Length when R2 fails", () => {
  for (const method of ["uploadPart", "complete"] as const) {
    it(`answers 503 when ${method} fails before it runs, stores nothing, and a retry succeeds`, async () => {
      const mesh = newMesh();
      const path = snapshotPath(2);
      const faulty = { ...env, BUCKET: failingMultipart(env.BUCKET, method, "before") } as Env;
      const body = randomBytes(PART_BYTES + 1000);
      await expect(putSnapshot(faulty, mesh, path, new Request("http://x/", { method: "PUT", body: chunked(body) }), {})).rejects.toMatchObject({
        status: 503,
        code: "unavailable",
      });
      expect(await r2Keys(`m/${mesh}/`)).toEqual([]);
      expect(await indexRows(mesh)).toEqual([]);
      const retry = await putFile(mesh, path, chunked(body));
      expect(retry.status).toBe(201);
      expect(await sha256Hex(await (await getFile(mesh, path)).arrayBuffer())).toBe(await sha256Hex(body));
    });
  }

  it("counts a complete() whose answer was lost as stored when the object carries this upload's write id", async () => {
    const mesh = newMesh();
    const path = snapshotPath(2);
    const faulty = { ...env, BUCKET: failingMultipart(env.BUCKET, "complete", "after") } as Env;
    const body = randomBytes(PART_BYTES + 1000);
    const outcome = await putSnapshot(faulty, mesh, path, new Request("http://x/", { method: "PUT", body: chunked(body) }), {});
    expect(outcome.status).toBe(201);
    expect(outcome.entry.size).toBe(PART_BYTES + 1000);
    expect(await sha256Hex(await (await getFile(mesh, path)).arrayBuffer())).toBe(await sha256Hex(body));
    expect(await indexRows(mesh)).toEqual([{ path, deleted_at: null }]);
  });
});

