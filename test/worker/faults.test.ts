// Fault injection against the real local bindings: the worker's default export is called with an
// env whose R2 bucket, D1 database or hub namespace is a Proxy around the real binding that fails
// once. After every fault the write must be either fully acknowledged and visible, or refused
// (retryable) with no partial state visible: GET, metadata and the parent listing agree. Then a
// plain retry succeeds.
import {
  abortAllDurableObjects,
  createExecutionContext,
  env,
  evictDurableObject,
  SELF,
  waitOnExecutionContext,
} from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../worker/index";
import type { Env } from "../../worker/env";
import { indexBinding, indexOverride } from "./io-support";

const ORIGIN = "http://meshbox.test/sync";
const ROOT = "/MyApp";

function newMesh(): string {
  return `mesh_${crypto.randomUUID()}`;
}

function fileUrl(mesh: string, path: string): string {
  return `${ORIGIN}/io/${mesh}/file?path=${encodeURIComponent(path)}`;
}

function changePath(device = "dev_fault"): string {
  const ms = String(Date.now()).padStart(15, "0");
  return `${ROOT}/changes/${ms}-0000-${device}-chg_${crypto.randomUUID()}.json`;
}

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let off = 0; off < n; off += 65_536) crypto.getRandomValues(out.subarray(off, Math.min(n, off + 65_536)));
  return out;
}

function sealedChange(padding = 256): string {
  const iv = btoa(String.fromCharCode(...randomBytes(12)));
  const ct = btoa(String.fromCharCode(...randomBytes(padding)));
  return JSON.stringify({ v: 1, iv, ct });
}

// ---------------------------------------------------------------------------------------------
// Injection

interface Fault {
  /** How many times the fault fired. */
  fired: number;
  /** How many calls of the method were seen. */
  calls: number;
}

/**
 * Wraps a binding so that the `nth` call of `method` fails once: "before" throws without calling
 * the real binding; "after" lets the real call complete (the body is stored) and then throws, as
 * when the answer is lost on the way back.
 */
function failingOnce<T extends object>(real: T, method: string, nth: number, when: "before" | "after"): { binding: T; fault: Fault } {
  const fault: Fault = { fired: 0, calls: 0 };
  const binding = new Proxy(real, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== "function") return value;
      const bound = (value as (...args: unknown[]) => unknown).bind(target);
      if (prop !== method) return bound;
      return async (...args: unknown[]) => {
        fault.calls += 1;
        const fire = fault.calls === nth;
        if (fire && when === "before") {
          fault.fired += 1;
          throw new Error(`injected fault: ${method} failed before running`);
        }
        const result = await bound(...args);
        if (fire) {
          fault.fired += 1;
          throw new Error(`injected fault: ${method} completed but its answer was lost`);
        }
        return result;
      };
    },
  });
  return { binding, fault };
}

/**
 * Wraps D1 so that the `nth` statement execution (run/all/first/raw, or one whole batch) rejects,
 * as a D1 outage would. Statements are wrapped too, and unwrapped again when handed to batch().
 */
function failingD1(real: D1Database, nth: number): { binding: D1Database; fault: Fault } {
  const fault: Fault = { fired: 0, calls: 0 };
  const unwrap = new WeakMap<object, D1PreparedStatement>();
  const fire = (): boolean => {
    fault.calls += 1;
    if (fault.calls !== nth) return false;
    fault.fired += 1;
    return true;
  };
  const injected = () => Promise.reject(new Error("D1_ERROR: injected fault"));
  const wrapStatement = (statement: D1PreparedStatement): D1PreparedStatement => {
    const proxy = new Proxy(statement, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (typeof value !== "function") return value;
        const fn = value as (...a: unknown[]) => unknown;
        if (prop === "bind") return (...args: unknown[]) => wrapStatement(fn.apply(target, args) as D1PreparedStatement);
        if (prop === "run" || prop === "all" || prop === "first" || prop === "raw") {
          return (...args: unknown[]) => (fire() ? injected() : fn.apply(target, args));
        }
        return fn.bind(target);
      },
    });
    unwrap.set(proxy, statement);
    return proxy;
  };
  const wrapDatabase = <D extends object>(db: D): D =>
    new Proxy(db, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (typeof value !== "function") return value;
        const fn = value as (...a: unknown[]) => unknown;
        if (prop === "prepare") return (...args: unknown[]) => wrapStatement(fn.apply(target, args) as D1PreparedStatement);
        if (prop === "batch") {
          return (statements: D1PreparedStatement[]) => (fire() ? injected() : fn.call(target, statements.map((st) => unwrap.get(st) ?? st)));
        }
        if (prop === "exec") return (...args: unknown[]) => (fire() ? injected() : fn.apply(target, args));
        if (prop === "withSession") return (...args: unknown[]) => wrapDatabase(fn.apply(target, args) as object);
        return fn.bind(target);
      },
    });
  return { binding: wrapDatabase(real), fault };
}

/** Like failingOnce, but counting calls of every R2 method (head, get, put, list, delete, ...). */
function failingNthR2Call(real: R2Bucket, nth: number, when: "before" | "after"): { binding: R2Bucket; fault: Fault; methods: string[] } {
  const fault: Fault = { fired: 0, calls: 0 };
  const methods: string[] = [];
  const binding = new Proxy(real, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== "function") return value;
      const fn = (value as (...args: unknown[]) => Promise<unknown>).bind(target);
      return async (...args: unknown[]) => {
        fault.calls += 1;
        methods.push(String(prop));
        const fire = fault.calls === nth;
        if (fire && when === "before") {
          fault.fired += 1;
          throw new Error(`injected fault: R2 ${String(prop)} failed before running`);
        }
        const result = await fn(...args);
        if (fire) {
          fault.fired += 1;
          throw new Error(`injected fault: R2 ${String(prop)} completed but its answer was lost`);
        }
        return result;
      };
    },
  });
  return { binding, fault, methods };
}

/** Calls the worker's default export with a modified env, as the runtime would. */
async function callWith(testEnv: Env, request: Request): Promise<{ status: number; text: string }> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(request, testEnv, ctx);
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  return { status: res.status, text };
}

function envWith(overrides: Partial<Env>): Env {
  return { ...(env as unknown as Env), ...overrides };
}

// ---------------------------------------------------------------------------------------------
// Observation

interface Visibility {
  get: number;
  body: string | null;
  metadata: number;
  listed: boolean;
}

async function visibility(mesh: string, path: string): Promise<Visibility> {
  const got = await SELF.fetch(fileUrl(mesh, path));
  const body = got.status === 200 ? await got.text() : (await got.arrayBuffer(), null);
  const meta = await SELF.fetch(`${ORIGIN}/io/${mesh}/metadata`, { method: "POST", body: JSON.stringify({ path }) });
  await meta.arrayBuffer();
  const parent = path.slice(0, path.lastIndexOf("/")) || "/";
  const list = await SELF.fetch(`${ORIGIN}/io/${mesh}/list-files`, { method: "POST", body: JSON.stringify({ path: parent }) });
  expect(list.status).toBe(200);
  const files = ((await list.json()) as { files: { path: string }[] }).files;
  return { get: got.status, body, metadata: meta.status, listed: files.some((f) => f.path === path) };
}

/** GET, metadata and listing agree: all present, or all absent. Returns which. */
async function expectConsistent(mesh: string, path: string): Promise<"present" | "absent"> {
  const v = await visibility(mesh, path);
  if (v.get === 200) {
    expect(v).toMatchObject({ metadata: 200, listed: true });
    return "present";
  }
  expect(v).toMatchObject({ get: 404, metadata: 404, listed: false });
  return "absent";
}

/** A refused write is retryable: a 5xx (or 4xx for a broken upload), never a 2xx that lies. */
function expectRefusedOrAcknowledged(status: number): "acknowledged" | "refused" {
  if (status >= 200 && status < 300) return "acknowledged";
  expect(status).toBeGreaterThanOrEqual(400);
  return "refused";
}

function put(mesh: string, path: string, body: BodyInit, headers: Record<string, string> = {}): Request {
  return new Request(fileUrl(mesh, path), { method: "PUT", body, headers });
}

async function selfPut(mesh: string, path: string, body: BodyInit): Promise<number> {
  const res = await SELF.fetch(put(mesh, path, body));
  await res.arrayBuffer();
  return res.status;
}

/** Bootstraps a mesh the way a new client does (manifest-1 and a generation-1 pointer). */
async function bootstrap(mesh: string): Promise<void> {
  const manifest = JSON.stringify({ version: 3, meshId: mesh, epoch: 0, snapshotPath: null, encrypted: true, writtenBy: "dev_fault", contentHash: "sha256:00" }, null, 2);
  expect(await selfPut(mesh, `${ROOT}/manifest-1.json`, manifest)).toBe(201);
  expect(await selfPut(mesh, `${ROOT}/manifest.json`, pointer(1))).toBe(201);
}

function pointer(generation: number): string {
  return JSON.stringify({ currentGeneration: generation, file: `manifest-${generation}.json` }, null, 2);
}

function generationBody(mesh: string, epoch: number, snapshotPath: string | null): string {
  return JSON.stringify({ version: 3, meshId: mesh, epoch, snapshotPath, encrypted: true, writtenBy: "dev_fault", contentHash: `sha256:${epoch}` }, null, 2);
}

/** A request body that delivers `okBytes` and then errors, like a client that goes away mid-upload. */
function dyingBody(okBytes: number, chunk = 16_384): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= okBytes) {
        controller.error(new Error("client disconnected"));
        return;
      }
      const n = Math.min(chunk, okBytes - sent);
      controller.enqueue(randomBytes(n));
      sent += n;
    },
  });
}

// ---------------------------------------------------------------------------------------------

describe("PUT /sync/io/<mesh>/file when R2 put fails", () => {
  it("a change file whose R2 put stored the body but lost its answer is never half-visible, and a retry succeeds", async () => {
    const mesh = newMesh();
    const path = changePath();
    const body = sealedChange();
    const { binding, fault } = failingOnce(env.BUCKET, "put", 1, "after");
    const first = await callWith(envWith({ BUCKET: binding }), put(mesh, path, body));
    expect(fault.fired).toBe(1);
    const outcome = expectRefusedOrAcknowledged(first.status);
    const state = await expectConsistent(mesh, path);
    if (outcome === "acknowledged") expect(state).toBe("present");

    const retry = await selfPut(mesh, path, body);
    expect([200, 201]).toContain(retry);
    expect(await visibility(mesh, path)).toEqual({ get: 200, body, metadata: 200, listed: true });
  });

  it("a change file whose R2 put lost its answer in an already indexed changes folder is never half-visible", async () => {
    const mesh = newMesh();
    expect(await selfPut(mesh, changePath(), sealedChange())).toBe(201);
    await expectConsistent(mesh, changePath());
    const path = changePath();
    const body = sealedChange();
    const { binding, fault } = failingOnce(env.BUCKET, "put", 1, "after");
    const first = await callWith(envWith({ BUCKET: binding }), put(mesh, path, body));
    expect(fault.fired).toBe(1);
    const outcome = expectRefusedOrAcknowledged(first.status);
    const state = await expectConsistent(mesh, path);
    if (outcome === "acknowledged") expect(state).toBe("present");
    expect([200, 201]).toContain(await selfPut(mesh, path, body));
    expect(await visibility(mesh, path)).toEqual({ get: 200, body, metadata: 200, listed: true });
  });

  it("a change file whose R2 put fails outright answers 503 and leaves nothing visible", async () => {
    const mesh = newMesh();
    const path = changePath();
    const body = sealedChange();
    const { binding, fault } = failingOnce(env.BUCKET, "put", 1, "before");
    const first = await callWith(envWith({ BUCKET: binding }), put(mesh, path, body));
    expect(fault.fired).toBe(1);
    expect(first.status).toBe(503);
    expect(JSON.parse(first.text)).toMatchObject({ error: "unavailable" });
    expect(await expectConsistent(mesh, path)).toBe("absent");
    expect(await selfPut(mesh, path, body)).toBe(201);
    expect(await visibility(mesh, path)).toEqual({ get: 200, body, metadata: 200, listed: true });
  });

  it("an app file overwrite whose R2 put lost its answer shows one version everywhere, and a retry succeeds", async () => {
    const mesh = newMesh();
    const path = `${ROOT}/notes/a.bin`;
    expect(await selfPut(mesh, path, "version-1")).toBe(201);
    const { binding, fault } = failingOnce(env.BUCKET, "put", 1, "after");
    const first = await callWith(envWith({ BUCKET: binding }), put(mesh, path, "version-2"));
    expect(fault.fired).toBe(1);
    expectRefusedOrAcknowledged(first.status);
    expect(await expectConsistent(mesh, path)).toBe("present");
    // 200 when the lost-answer write did land (an identical repeat), 204 when it did not.
    expect([200, 204]).toContain(await selfPut(mesh, path, "version-2"));
    expect(await visibility(mesh, path)).toEqual({ get: 200, body: "version-2", metadata: 200, listed: true });
  });

  it("a snapshot whose R2 put lost its answer can be retried with the same bytes and committed", async () => {
    const mesh = newMesh();
    await bootstrap(mesh);
    const snapshot = `${ROOT}/mainline/snapshot-1-server_relay_1.json`;
    const body = sealedChange(4096);
    const { binding, fault } = failingOnce(env.BUCKET, "put", 1, "after");
    const first = await callWith(envWith({ BUCKET: binding }), put(mesh, snapshot, body));
    expect(fault.fired).toBe(1);
    expectRefusedOrAcknowledged(first.status);
    await expectConsistent(mesh, snapshot);

    expect([200, 201]).toContain(await selfPut(mesh, snapshot, body));
    expect(await selfPut(mesh, `${ROOT}/manifest-2.json`, generationBody(mesh, 1, snapshot))).toBe(201);
    expect(await selfPut(mesh, `${ROOT}/manifest.json`, pointer(2))).toBe(204);
    expect(await visibility(mesh, snapshot)).toEqual({ get: 200, body, metadata: 200, listed: true });
  });
});

describe("PUT /sync/io/<mesh>/file when the D1 index update fails", () => {
  it("a change file is refused with a 5xx, nothing is visible, and a retry succeeds", async () => {
    const mesh = newMesh();
    const path = changePath();
    const body = sealedChange();
    const { binding, fault } = failingOnce((await indexBinding(mesh)).db, "batch", 1, "before");
    const first = await callWith(envWith(await indexOverride(mesh, binding)), put(mesh, path, body));
    expect(fault.fired).toBe(1);
    expect(first.status).toBeGreaterThanOrEqual(500);
    expect(first.status).toBe(503);
    await expectConsistent(mesh, path);
    expect([200, 201]).toContain(await selfPut(mesh, path, body));
    expect(await visibility(mesh, path)).toEqual({ get: 200, body, metadata: 200, listed: true });
  });

  it("a head.json raise needs no D1: with D1 failing it is acknowledged, visible, and a retry is a no-op", async () => {
    const mesh = newMesh();
    const path = `${ROOT}/changes/head.json`;
    const head = JSON.stringify({ latestHlc: `${String(Date.now()).padStart(15, "0")}-0000-dev_fault` });
    const { binding, fault } = failingOnce((await indexBinding(mesh)).db, "batch", 1, "before");
    const first = await callWith(envWith(await indexOverride(mesh, binding)), put(mesh, path, head));
    // Only the background last-write touch may meet the fault; the acknowledgment never waits on D1.
    expect(fault.fired).toBeLessThanOrEqual(1);
    expect(first.status).toBe(201);
    await expectConsistent(mesh, path);
    expect(await selfPut(mesh, path, head)).toBe(200);
    expect(await visibility(mesh, path)).toEqual({ get: 200, body: head, metadata: 200, listed: true });
  });

  it("a manifest pointer commit needs no D1: with D1 failing it commits once, and the retry answers 200", async () => {
    const mesh = newMesh();
    await bootstrap(mesh);
    expect(await selfPut(mesh, `${ROOT}/manifest-2.json`, generationBody(mesh, 1, null))).toBe(201);
    const { binding, fault } = failingOnce((await indexBinding(mesh)).db, "batch", 1, "before");
    const first = await callWith(envWith(await indexOverride(mesh, binding)), put(mesh, `${ROOT}/manifest.json`, pointer(2)));
    // Only the background last-write touch may meet the fault; the acknowledgment never waits on D1.
    expect(fault.fired).toBeLessThanOrEqual(1);
    expect(first.status).toBe(204);
    expect(await selfPut(mesh, `${ROOT}/manifest.json`, pointer(2))).toBe(200);
    expect(await visibility(mesh, `${ROOT}/manifest.json`)).toEqual({ get: 200, body: pointer(2), metadata: 200, listed: true });
  });
});

describe("PUT /sync/io/<mesh>/stored-file when D1 or R2 fails", () => {
  const headers = { "Content-Type": "image/png", "X-Interocitor-Device-Id": "dev_fault", "X-Interocitor-Plaintext-Size": "5" };

  async function storedState(mesh: string, path: string): Promise<{ get: number; body: string | null; metadata: number }> {
    const url = `${ORIGIN}/io/${mesh}/stored-file?path=${encodeURIComponent(path)}`;
    const got = await SELF.fetch(url);
    const body = got.status === 200 ? await got.text() : (await got.arrayBuffer(), null);
    const meta = await SELF.fetch(`${ORIGIN}/io/${mesh}/stored-file-metadata`, { method: "POST", body: JSON.stringify({ path }) });
    await meta.arrayBuffer();
    return { get: got.status, body, metadata: meta.status };
  }

  for (const [binding, method, when] of [["DB", "batch", "before"], ["BUCKET", "put", "after"], ["BUCKET", "put", "before"]] as const) {
    it(`a ${binding}.${method} failure (${when}) leaves GET and metadata agreeing, and a retry succeeds`, async () => {
      const mesh = newMesh();
      const path = `${ROOT}/files/${crypto.randomUUID()}.png`;
      const url = `${ORIGIN}/io/${mesh}/stored-file?path=${encodeURIComponent(path)}`;
      const { binding: faulty, fault } = failingOnce(binding === "DB" ? (await indexBinding(mesh)).db : env.BUCKET, method, 1, when);
      const first = await callWith(envWith(binding === "DB" ? await indexOverride(mesh, faulty as D1Database) : ({ [binding]: faulty } as Partial<Env>)), new Request(url, { method: "PUT", body: "bytes", headers }));
      expect(fault.fired).toBe(1);
      const outcome = expectRefusedOrAcknowledged(first.status);
      expect(first.status).not.toBe(500);
      const state = await storedState(mesh, path);
      if (state.get === 200) expect(state).toEqual({ get: 200, body: "bytes", metadata: 200 });
      else expect(state).toEqual({ get: 404, body: null, metadata: 404 });
      if (outcome === "acknowledged") expect(state.get).toBe(200);

      const retry = await SELF.fetch(url, { method: "PUT", body: "bytes", headers });
      expect([200, 201]).toContain(retry.status);
      expect(((await retry.json()) as { file: { size: number } }).file.size).toBe(5);
      expect(await storedState(mesh, path)).toEqual({ get: 200, body: "bytes", metadata: 200 });
    });
  }
});

/** After a refused or acknowledged write, the state agrees, and a plain retry succeeds. */
describe("PUT /sync/io/<mesh>/file with the Nth D1 call of the request failing", () => {
  // The sweep runs one past the calls a request makes today, so a new D1 call is covered too.
  for (const nth of [1, 2, 3]) {
    it(`a change file write with D1 call ${nth} failing is refused with 503 or fully acknowledged, and a retry succeeds`, async () => {
      const mesh = newMesh();
      // An indexed folder, as on any mesh that has been flushed to before.
      expect(await selfPut(mesh, changePath("dev_seed"), sealedChange())).toBe(201);
      const path = changePath();
      const body = sealedChange();
      const { binding, fault } = failingD1((await indexBinding(mesh)).db, nth);
      const first = await callWith(envWith(await indexOverride(mesh, binding)), put(mesh, path, body));
      if (fault.fired === 0) expect(first.status).toBe(201);
      else if (first.status >= 300) expect(first.status).toBe(503);
      const state = await expectConsistent(mesh, path);
      if (first.status < 300) expect(state).toBe("present");
      expect([200, 201]).toContain(await selfPut(mesh, path, body));
      expect(await visibility(mesh, path)).toEqual({ get: 200, body, metadata: 200, listed: true });
    });

    it(`a head.json raise with D1 call ${nth} failing is refused with 503 or fully acknowledged, and a retry succeeds`, async () => {
      const mesh = newMesh();
      const path = `${ROOT}/changes/head.json`;
      const head = JSON.stringify({ latestHlc: `${String(Date.now()).padStart(15, "0")}-00${String(nth).padStart(2, "0")}-dev_fault` });
      const { binding, fault } = failingD1((await indexBinding(mesh)).db, nth);
      const first = await callWith(envWith(await indexOverride(mesh, binding)), put(mesh, path, head));
      if (fault.fired === 0) expect(first.status).toBe(201);
      else if (first.status >= 300) expect(first.status).toBe(503);
      await expectConsistent(mesh, path);
      expect([200, 201, 204]).toContain(await selfPut(mesh, path, head));
      expect(await visibility(mesh, path)).toEqual({ get: 200, body: head, metadata: 200, listed: true });
    });
  }
});

describe("PUT /sync/io/<mesh>/file with the Nth R2 call of the request failing", () => {
  const cases = [
    { kind: "change file", path: () => changePath(), created: 201 },
    { kind: "app file overwrite", path: () => `${ROOT}/notes/same.bin`, created: 204 },
    { kind: "snapshot", path: () => `${ROOT}/mainline/snapshot-1-server_relay_1.json`, created: 201 },
  ] as const;
  for (const c of cases) {
    for (const when of ["before", "after"] as const) {
      for (const nth of [1, 2, 3]) {
        it(`a ${c.kind} write with R2 call ${nth} failing ${when} it runs is refused or acknowledged consistently, and a retry succeeds`, async () => {
          const mesh = newMesh();
          const path = c.path();
          // Seed the folder (indexed), and the previous version for the overwrite case.
          if (c.kind === "change file") expect(await selfPut(mesh, changePath("dev_seed"), sealedChange())).toBe(201);
          if (c.kind === "app file overwrite") expect(await selfPut(mesh, path, "version-1")).toBe(201);
          const body = sealedChange();
          const { binding, fault } = failingNthR2Call(env.BUCKET, nth, when);
          const first = await callWith(envWith({ BUCKET: binding }), put(mesh, path, body));
          if (fault.fired === 0) expect(first.status).toBe(c.created);
          else if (first.status >= 300) expect(first.status).toBe(503);
          const state = await expectConsistent(mesh, path);
          if (first.status < 300) expect(state).toBe("present");
          expect([200, 201, 204]).toContain(await selfPut(mesh, path, body));
          expect(await visibility(mesh, path)).toEqual({ get: 200, body, metadata: 200, listed: true });
        });
      }
    }
  }
});

describe("reads with the Nth R2 or D1 call failing", () => {
  // A read that fails must say "retry" (503): a 404 would tell a puller the file is gone
  // (poisoning its sync) and a 500 would say the server has a bug.
  async function seeded() {
    const mesh = newMesh();
    const path = changePath();
    const body = sealedChange();
    expect(await selfPut(mesh, path, body)).toBe(201);
    return { mesh, path, body };
  }
  const readers = {
    "GET file": (mesh: string, path: string) => new Request(fileUrl(mesh, path)),
    "POST metadata": (mesh: string, path: string) => new Request(`${ORIGIN}/io/${mesh}/metadata`, { method: "POST", body: JSON.stringify({ path }) }),
    "POST list-files": (mesh: string, path: string) => new Request(`${ORIGIN}/io/${mesh}/list-files`, { method: "POST", body: JSON.stringify({ path: path.slice(0, path.lastIndexOf("/")) }) }),
  } as const;
  for (const [name, request] of Object.entries(readers)) {
    for (const nth of [1, 2]) {
      it(`${name} with R2 call ${nth} failing answers the file or 503`, async () => {
        const { mesh, path, body } = await seeded();
        const { binding, fault } = failingNthR2Call(env.BUCKET, nth, "before");
        const answer = await callWith(envWith({ BUCKET: binding }), request(mesh, path));
        if (fault.fired === 0 || answer.status === 200) {
          expect(answer.status).toBe(200);
          if (name === "GET file") expect(answer.text).toBe(body);
          else expect(answer.text).toContain(path);
        } else {
          expect(answer.status).toBe(503);
        }
      });

      it(`${name} with D1 call ${nth} failing answers the file or 503`, async () => {
        const { mesh, path, body } = await seeded();
        const { binding, fault } = failingD1((await indexBinding(mesh)).db, nth);
        const answer = await callWith(envWith(await indexOverride(mesh, binding)), request(mesh, path));
        if (fault.fired === 0 || answer.status === 200) {
          expect(answer.status).toBe(200);
          if (name === "GET file") expect(answer.text).toBe(body);
          else expect(answer.text).toContain(path);
        } else {
          expect(answer.status).toBe(503);
        }
      });
    }
  }
});

describe("PUT /sync/io/<mesh>/stored-file with the Nth D1 call of the request failing", () => {
  const headers = { "Content-Type": "image/png", "X-Interocitor-Device-Id": "dev_fault", "X-Interocitor-Plaintext-Size": "5" };
  for (const nth of [1, 2, 3, 4, 5]) {
    it(`a stored file write with D1 call ${nth} failing answers 503 or 201, GET and metadata agree, and a retry succeeds`, async () => {
      const mesh = newMesh();
      const path = `${ROOT}/files/${crypto.randomUUID()}.png`;
      const url = `${ORIGIN}/io/${mesh}/stored-file?path=${encodeURIComponent(path)}`;
      const { binding, fault } = failingD1((await indexBinding(mesh)).db, nth);
      const first = await callWith(envWith(await indexOverride(mesh, binding)), new Request(url, { method: "PUT", body: "bytes", headers }));
      if (fault.fired === 0) expect(first.status).toBe(201);
      else if (first.status >= 300) expect(first.status).toBe(503);
      const got = await SELF.fetch(url);
      const meta = await SELF.fetch(`${ORIGIN}/io/${mesh}/stored-file-metadata`, { method: "POST", body: JSON.stringify({ path }) });
      await got.arrayBuffer();
      await meta.arrayBuffer();
      expect(got.status).toBe(meta.status);
      if (first.status < 300) expect(got.status).toBe(200);
      const retry = await SELF.fetch(url, { method: "PUT", body: "bytes", headers });
      await retry.arrayBuffer();
      expect([200, 201]).toContain(retry.status);
    });
  }
});

describe("DELETE /sync/io/<mesh>/file with the Nth R2 or D1 call failing", () => {
  interface Listed { name: string; path: string; size: number; modifiedTime: string; etag: string }

  /**
   * Listing and metadata agree: the same entry in both, or absent from both. A listed name answers
   * GET with its bytes; an app file or folder absent from listings answers 404 too (only a deleted
   * change file is served through its grace period). Returns the entry, or null.
   */
  async function expectDeleteConsistent(mesh: string, path: string, body: string, isChange: boolean): Promise<Listed | null> {
    const v = await visibility(mesh, path);
    const meta = await SELF.fetch(`${ORIGIN}/io/${mesh}/metadata`, { method: "POST", body: JSON.stringify({ path }) });
    const described = ((await meta.json()) as { file: Listed | null }).file;
    const parent = path.slice(0, path.lastIndexOf("/"));
    const list = await SELF.fetch(`${ORIGIN}/io/${mesh}/list-files`, { method: "POST", body: JSON.stringify({ path: parent }) });
    const listed = ((await list.json()) as { files: Listed[] }).files.find((f) => f.path === path) ?? null;
    expect(listed).toEqual(described);
    if (v.metadata === 200) {
      expect(v).toMatchObject({ get: 200, body, listed: true });
      return listed;
    }
    expect(v).toMatchObject({ metadata: 404, listed: false });
    if (!isChange) expect(v.get).toBe(404);
    return null;
  }

  const cases = [
    { kind: "app file", isChange: false, seed: async (mesh: string) => { const p = `${ROOT}/notes/doomed.bin`; expect(await selfPut(mesh, p, "bytes")).toBe(201); return { target: p, probe: p, body: "bytes" }; } },
    { kind: "change file", isChange: true, seed: async (mesh: string) => { const p = changePath(); const b = sealedChange(); expect(await selfPut(mesh, p, b)).toBe(201); return { target: p, probe: p, body: b }; } },
    { kind: "folder (recursive)", isChange: false, seed: async (mesh: string) => {
      const folder = `${ROOT}/tree`;
      for (const name of ["a.bin", "b.bin", "sub/c.bin"]) expect(await selfPut(mesh, `${folder}/${name}`, name)).toBe(201);
      return { target: folder, probe: `${folder}/sub/c.bin`, body: "sub/c.bin" };
    } },
  ];
  for (const c of cases) {
    for (const [binding, nth] of [["BUCKET", 1], ["BUCKET", 2], ["DB", 1], ["DB", 2], ["DB", 3]] as const) {
      // A deleted change file stays listed through the listing window (PROTOCOL section 3, "Deleted
      // change files"), described at its deletion time; every other class leaves listings at once.
      it(`a ${c.kind} DELETE with ${binding} call ${nth} failing leaves listing and metadata agreeing, and a retry settles it`, async () => {
        const mesh = newMesh();
        const { target, probe, body } = await c.seed(mesh);
        const written = await expectDeleteConsistent(mesh, probe, body, c.isChange);
        expect(written).not.toBeNull();
        const before = Date.now();
        const faulty = binding === "DB" ? failingD1((await indexBinding(mesh)).db, nth) : failingNthR2Call(env.BUCKET, nth, "before");
        const first = await callWith(envWith(binding === "DB" ? await indexOverride(mesh, faulty.binding as D1Database) : ({ [binding]: faulty.binding } as Partial<Env>)), new Request(fileUrl(mesh, target), { method: "DELETE" }));
        if (faulty.fault.fired === 0) expect(first.status).toBe(204);
        else if (first.status >= 300) expect(first.status).toBe(503);
        const state = await expectDeleteConsistent(mesh, probe, body, c.isChange);
        if (first.status === 204 && !c.isChange) expect(state).toBeNull();
        if (state !== null) expect({ ...state, modifiedTime: "" }).toEqual({ ...written, modifiedTime: "" });
        const retry = await SELF.fetch(fileUrl(mesh, target), { method: "DELETE" });
        await retry.arrayBuffer();
        // An acknowledged delete stands: the retry finds nothing left to delete.
        expect(retry.status).toBe(first.status === 204 ? 404 : retry.status);
        expect([204, 404]).toContain(retry.status);
        const settled = await expectDeleteConsistent(mesh, probe, body, c.isChange);
        if (c.isChange) {
          // Listed through the window, the same bytes and etag, modifiedTime at its deletion.
          expect(settled).not.toBeNull();
          expect({ ...settled, modifiedTime: "" }).toEqual({ ...written, modifiedTime: "" });
          const deletedAt = Date.parse(settled!.modifiedTime);
          expect(deletedAt).toBeGreaterThanOrEqual(Math.max(before, Date.parse(written!.modifiedTime)));
          expect(deletedAt).toBeLessThanOrEqual(Date.now());
        } else {
          expect(settled).toBeNull();
        }
        const again = await SELF.fetch(fileUrl(mesh, target), { method: "DELETE" });
        await again.arrayBuffer();
        expect(again.status).toBe(404);
      });
    }
  }
});

describe("DELETE /sync/io/<mesh>/file when R2 delete fails", () => {
  it("the file stays consistently present or consistently gone, and a retry settles it", async () => {
    const mesh = newMesh();
    const path = `${ROOT}/notes/doomed.bin`;
    expect(await selfPut(mesh, path, "bytes")).toBe(201);
    const { binding, fault } = failingOnce(env.BUCKET, "delete", 1, "before");
    const first = await callWith(envWith({ BUCKET: binding }), new Request(fileUrl(mesh, path), { method: "DELETE" }));
    expect(fault.fired).toBe(1);
    expectRefusedOrAcknowledged(first.status);
    await expectConsistent(mesh, path);
    const retry = await SELF.fetch(fileUrl(mesh, path), { method: "DELETE" });
    await retry.arrayBuffer();
    expect([204, 404]).toContain(retry.status);
    expect(await expectConsistent(mesh, path)).toBe("absent");
  });
});

describe("PUT /sync/io/<mesh>/file while the hub restarts", () => {
  it("a pointer commit racing a hub abort ends committed once, and the retry answers 200 or 204", async () => {
    const mesh = newMesh();
    await bootstrap(mesh);
    expect(await selfPut(mesh, `${ROOT}/manifest-2.json`, generationBody(mesh, 1, null))).toBe(201);
    const inFlight = callWith(env as unknown as Env, put(mesh, `${ROOT}/manifest.json`, pointer(2)));
    await abortAllDurableObjects();
    const first = await inFlight;
    expectRefusedOrAcknowledged(first.status);
    expect([200, 204]).toContain(await selfPut(mesh, `${ROOT}/manifest.json`, pointer(2)));
    expect(await visibility(mesh, `${ROOT}/manifest.json`)).toEqual({ get: 200, body: pointer(2), metadata: 200, listed: true });
  });

  it("a hub aborted inside the RPC of a head.json write leaves one consistent value", async () => {
    const mesh = newMesh();
    const path = `${ROOT}/changes/head.json`;
    const head = JSON.stringify({ latestHlc: `${String(Date.now()).padStart(15, "0")}-0001-dev_fault` });
    const hubs = abortingOnFirstCall(env.MESH_HUB);
    const first = await callWith(envWith({ MESH_HUB: hubs.binding }), put(mesh, path, head));
    expect(hubs.fault.fired).toBe(1);
    expectRefusedOrAcknowledged(first.status);
    await expectConsistent(mesh, path);
    expect([200, 201, 204]).toContain(await selfPut(mesh, path, head));
    expect(await visibility(mesh, path)).toEqual({ get: 200, body: head, metadata: 200, listed: true });
  });

  it("control objects survive a graceful eviction of the hub", async () => {
    const mesh = newMesh();
    await bootstrap(mesh);
    const device = `${ROOT}/devices/dev_fault.json`;
    expect(await selfPut(mesh, device, JSON.stringify({ deviceId: "dev_fault" }))).toBe(201);
    const stub = env.MESH_HUB.get(env.MESH_HUB.idFromName(mesh));
    await evictDurableObject(stub).catch(() => undefined);
    expect(await visibility(mesh, `${ROOT}/manifest.json`)).toEqual({ get: 200, body: pointer(1), metadata: 200, listed: true });
    expect(await visibility(mesh, device)).toMatchObject({ get: 200, metadata: 200, listed: true });
    // The committed generation is still enforced after the restart.
    const stale = await SELF.fetch(put(mesh, `${ROOT}/manifest.json`, pointer(0)));
    await stale.arrayBuffer();
    expect(stale.status).toBe(409);
  });
});

describe("push frames while the hub is evicted", () => {
  it("a frame pending in the coalescing window still reaches a hibernated socket after an eviction", async () => {
    const mesh = newMesh();
    const upgrade = await SELF.fetch(`${ORIGIN}/notify/${mesh}`, { headers: { Upgrade: "websocket" } });
    expect(upgrade.status).toBe(101);
    const socket = upgrade.webSocket!;
    const frames: { path?: string; paths?: string[] }[] = [];
    socket.addEventListener("message", (event) => frames.push(JSON.parse(String(event.data)) as { path?: string; paths?: string[] }));
    socket.accept();

    const path = `${ROOT}/notes/pending.bin`;
    expect(await selfPut(mesh, path, "bytes")).toBe(201);
    // The frame waits out the quiet window; evict the hub inside it.
    await evictDurableObject(env.MESH_HUB.get(env.MESH_HUB.idFromName(mesh))).catch(() => undefined);

    const deadline = Date.now() + 10_000;
    const seen = () => frames.some((f) => f.path === path || (f.paths ?? []).includes(path));
    while (!seen() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    socket.close(1000, "done");
    expect(seen()).toBe(true);
  });
});

/**
 * Wraps the hub namespace so that the first RPC call on any stub is followed, while it is in
 * flight, by aborting every Durable Object (the hub restarts mid-request).
 */
function abortingOnFirstCall(real: Env["MESH_HUB"]): { binding: Env["MESH_HUB"]; fault: Fault } {
  const fault: Fault = { fired: 0, calls: 0 };
  const wrapStub = (stub: object) =>
    new Proxy(stub, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (typeof value !== "function" || prop === "then" || prop === "fetch") {
          return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        }
        return async (...args: unknown[]) => {
          fault.calls += 1;
          const pending = (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          if (fault.calls === 1) {
            fault.fired += 1;
            await abortAllDurableObjects();
          }
          return pending;
        };
      },
    });
  const binding = new Proxy(real, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== "function") return value;
      const bound = (value as (...a: unknown[]) => unknown).bind(target);
      if (prop !== "get" && prop !== "getByName") return bound;
      return (...args: unknown[]) => wrapStub(bound(...args) as object);
    },
  });
  return { binding, fault };
}

/** A PUT whose body stream errors after `okBytes`, handed straight to the worker (no transport in between). */
async function dyingPut(mesh: string, url: string, okBytes: number, headers: Record<string, string> = {}, chunk?: number) {
  const request = new Request(url, { method: "PUT", body: dyingBody(okBytes, chunk), headers, duplex: "half" } as RequestInit);
  return callWith(env as unknown as Env, request);
}

/** A PUT that declares `declared` bytes but whose body ends cleanly after `sent` (a cut connection). */
async function truncatedPut(url: string, declared: number, sent: number, headers: Record<string, string> = {}) {
  let done = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (done >= sent) {
        controller.close();
        return;
      }
      const n = Math.min(8192, sent - done);
      controller.enqueue(randomBytes(n));
      done += n;
    },
  });
  const request = new Request(url, { method: "PUT", body, headers: { ...headers, "Content-Length": String(declared) }, duplex: "half" } as RequestInit);
  return callWith(env as unknown as Env, request);
}

function expectRefusedUpload(status: number): void {
  expect(status).toBeGreaterThanOrEqual(400);
  expect(status).not.toBe(500);
}

describe("PUT /sync/io/<mesh>/file with a client that disconnects mid-upload", () => {
  it("a change file upload whose stream errors part-way is refused and leaves nothing visible; a retry succeeds", async () => {
    const mesh = newMesh();
    const path = changePath();
    expectRefusedUpload((await dyingPut(mesh, fileUrl(mesh, path), 100_000)).status);
    expect(await expectConsistent(mesh, path)).toBe("absent");
    const body = sealedChange();
    expect(await selfPut(mesh, path, body)).toBe(201);
    expect(await visibility(mesh, path)).toEqual({ get: 200, body, metadata: 200, listed: true });
  });

  it("a change file upload cut short of its Content-Length is refused and leaves nothing visible", async () => {
    const mesh = newMesh();
    const path = changePath();
    expectRefusedUpload((await truncatedPut(fileUrl(mesh, path), 100_000, 40_000)).status);
    expect(await expectConsistent(mesh, path)).toBe("absent");
    const body = sealedChange();
    expect(await selfPut(mesh, path, body)).toBe(201);
  });

  it("a snapshot upload that dies part-way leaves no candidate behind that blocks the retry", async () => {
    const mesh = newMesh();
    await bootstrap(mesh);
    const snapshot = `${ROOT}/mainline/snapshot-1-server_relay_1.json`;
    expectRefusedUpload((await dyingPut(mesh, fileUrl(mesh, snapshot), 300_000)).status);
    expect(await expectConsistent(mesh, snapshot)).toBe("absent");
    const body = sealedChange(8192);
    expect(await selfPut(mesh, snapshot, body)).toBe(201);
    expect(await visibility(mesh, snapshot)).toEqual({ get: 200, body, metadata: 200, listed: true });
  });

  it("a device record upload that dies part-way changes nothing", async () => {
    const mesh = newMesh();
    const path = `${ROOT}/devices/dev_fault.json`;
    const record = '{"deviceId":"dev_fault","n":1}';
    expect(await selfPut(mesh, path, record)).toBe(201);
    expectRefusedUpload((await dyingPut(mesh, fileUrl(mesh, path), 20_000, {}, 4096)).status);
    expect(await visibility(mesh, path)).toEqual({ get: 200, body: record, metadata: 200, listed: true });
  });

  it("an app file overwrite cut short of its Content-Length keeps the previous version everywhere", async () => {
    const mesh = newMesh();
    const path = `${ROOT}/notes/kept.bin`;
    expect(await selfPut(mesh, path, "version-1")).toBe(201);
    expectRefusedUpload((await truncatedPut(fileUrl(mesh, path), 50_000, 10_000)).status);
    expect(await visibility(mesh, path)).toEqual({ get: 200, body: "version-1", metadata: 200, listed: true });
  });
});

describe("PUT /sync/io/<mesh>/stored-file with a client that disconnects mid-upload", () => {
  it("the upload is refused, the file is absent from metadata and GET, and a retry succeeds", async () => {
    const mesh = newMesh();
    const path = `${ROOT}/files/photo.bin`;
    const url = `${ORIGIN}/io/${mesh}/stored-file?path=${encodeURIComponent(path)}`;
    const headers = { "Content-Type": "application/octet-stream", "X-Interocitor-Device-Id": "dev_fault", "X-Interocitor-Plaintext-Size": "100" };
    expectRefusedUpload((await dyingPut(mesh, url, 200_000, headers)).status);
    const meta = await SELF.fetch(`${ORIGIN}/io/${mesh}/stored-file-metadata`, { method: "POST", body: JSON.stringify({ path }) });
    expect(meta.status).toBe(404);
    await meta.arrayBuffer();
    const got = await SELF.fetch(url);
    expect(got.status).toBe(404);
    await got.arrayBuffer();

    const retry = await SELF.fetch(url, { method: "PUT", body: "complete", headers });
    expect(retry.status).toBe(201);
    expect(((await retry.json()) as { file: { size: number } }).file.size).toBe(8);
    const again = await SELF.fetch(url);
    expect(again.status).toBe(200);
    expect(await again.text()).toBe("complete");
  });
});
