// Push over real WebSockets against the real worker (wrangler dev): which writes produce frames,
// fan-out to every subscriber of a mesh and to no other mesh, 500 sockets on one mesh, and the
// push latency from write acknowledgement to frame.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWorker, type RunningWorker } from "./support/worker-process";

let worker: RunningWorker;
const sockets: WebSocket[] = [];
beforeAll(async () => {
  worker = await startWorker();
});
afterAll(async () => {
  for (const s of sockets) s.close();
  await worker?.stop();
});

interface Frame {
  type: string;
  op: string;
  path: string;
  pathType: string;
  ts: number;
  seq: number;
  paths?: string[];
}

interface Subscriber {
  frames: Frame[];
  /** Arrival time (performance.now()) of each frame. */
  arrivals: number[];
  socket: WebSocket;
}

const newMesh = () => `push_${crypto.randomUUID()}`;

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function subscribe(mesh: string): Promise<Subscriber> {
  const url = `${worker.base.replace(/^http/, "ws")}/notify/${mesh}`;
  const socket = new WebSocket(url);
  sockets.push(socket);
  const sub: Subscriber = { frames: [], arrivals: [], socket };
  socket.addEventListener("message", (e) => {
    sub.arrivals.push(performance.now());
    sub.frames.push(JSON.parse(String(e.data)) as Frame);
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("WebSocket did not open in 15 s")), 15_000);
    socket.addEventListener("open", () => {
      clearTimeout(timer);
      resolve();
    });
    socket.addEventListener("error", () => {
      clearTimeout(timer);
      reject(new Error(`WebSocket to ${url} failed`));
    });
  });
  return sub;
}

async function put(mesh: string, path: string, body: string): Promise<number> {
  const res = await fetch(`${worker.base}/io/${mesh}/file?path=${encodeURIComponent(path)}`, { method: "PUT", body });
  await res.arrayBuffer();
  return res.status;
}

const hlc = (ms: number, device: string) => `${String(ms).padStart(15, "0")}-0000-${device}`;

/** A client flush as CLIENT.md describes it: change file, head.json, device record. */
async function flush(mesh: string, ms: number): Promise<string> {
  const change = `/R/changes/${hlc(ms, "dev")}-chg_${crypto.randomUUID()}.json`;
  expect(await put(mesh, change, JSON.stringify({ v: 1, iv: "x", ct: "y" }))).toBe(201);
  expect([201, 204]).toContain(await put(mesh, "/R/changes/head.json", JSON.stringify({ latestHlc: hlc(ms, "dev") })));
  expect([201, 204]).toContain(await put(mesh, "/R/devices/dev.json", JSON.stringify({ lastSeen: ms })));
  return change;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

describe("GET /sync/notify/<mesh> (WebSocket push)", () => {
  it("a flush (change file PUT, then head.json PUT, then device record) yields exactly one frame", async () => {
    const mesh = newMesh();
    const sub = await subscribe(mesh);
    const change = await flush(mesh, 1_000);
    await until(() => sub.frames.length >= 1, "the flush frame");
    // The marker's frame is the next one: nothing else was sent for the flush.
    expect(await put(mesh, "/R/marker.bin", "m")).toBe(201);
    await until(() => sub.frames.length >= 2, "the marker frame");
    expect(sub.frames).toHaveLength(2);
    expect(sub.frames[0]).toEqual({
      type: "invalidation",
      op: "write",
      path: "/R/changes/head.json",
      pathType: "head",
      ts: expect.any(Number),
      seq: 1,
      paths: [change, "/R/changes/head.json"],
    });
    expect(sub.frames[1]).toMatchObject({ path: "/R/marker.bin", seq: 2 });
  });

  it("device-record PUTs (heartbeats) yield no frame", async () => {
    const mesh = newMesh();
    const sub = await subscribe(mesh);
    for (let i = 0; i < 5; i++) expect([201, 204]).toContain(await put(mesh, "/R/devices/dev.json", JSON.stringify({ beat: i })));
    expect(await put(mesh, "/R/marker.bin", "m")).toBe(201);
    await until(() => sub.frames.length >= 1, "the marker frame");
    expect(sub.frames).toHaveLength(1);
    expect(sub.frames[0]).toMatchObject({ path: "/R/marker.bin", seq: 1 });
    expect(sub.frames[0]!.paths).toBeUndefined();
  });

  it("frames reach every subscriber of the mesh and none of another mesh", async () => {
    const mesh = newMesh();
    const other = newMesh();
    const subs = await Promise.all(Array.from({ length: 5 }, () => subscribe(mesh)));
    const bystander = await subscribe(other);
    await flush(mesh, 2_000);
    await until(() => subs.every((s) => s.frames.length === 1), "a frame on every subscriber");
    expect(await put(other, "/R/marker.bin", "m")).toBe(201);
    await until(() => bystander.frames.length === 1, "the other mesh's marker frame");
    expect(bystander.frames[0]).toMatchObject({ path: "/R/marker.bin", seq: 1 });
    expect(subs.map((s) => s.frames.length)).toEqual([1, 1, 1, 1, 1]);
    expect(new Set(subs.map((s) => s.frames[0]!.seq))).toEqual(new Set([1]));
  });

  it("500 sockets on one mesh all receive the frame", async () => {
    const mesh = newMesh();
    const subs: Subscriber[] = [];
    for (let batch = 0; batch < 10; batch++) {
      subs.push(...(await Promise.all(Array.from({ length: 50 }, () => subscribe(mesh)))));
    }
    const health = await fetch(`${worker.base}/notify/${mesh}/health`);
    expect(await health.json()).toEqual({ ok: true, mesh, connected: 500, pendingFrames: 0, seq: 0 });
    expect(await put(mesh, "/R/one.bin", "1")).toBe(201);
    await until(() => subs.every((s) => s.frames.length === 1), "the frame on all 500 sockets", 30_000);
    expect(subs.filter((s) => s.frames[0]?.path === "/R/one.bin")).toHaveLength(500);
    for (const s of subs) s.socket.close();
  });

  it("delivers frames p95 within the max delay over 200 writes (write ack to frame)", async () => {
    const mesh = newMesh();
    const sub = await subscribe(mesh);
    const latencies: number[] = [];
    for (let i = 0; i < 200; i++) {
      const before = sub.frames.length;
      const res = await fetch(`${worker.base}/io/${mesh}/file?path=/R/lat-${i}.bin`, { method: "PUT", body: String(i) });
      await res.arrayBuffer();
      const acked = performance.now();
      expect(res.status).toBe(201);
      await until(() => sub.frames.length > before, `frame ${i}`);
      latencies.push(sub.arrivals[before]! - acked);
    }
    const sorted = [...latencies].sort((a, b) => a - b);
    const p50 = percentile(sorted, 50);
    const p95 = percentile(sorted, 95);
    console.log(JSON.stringify({ measure: "push latency (write ack -> frame), ms", writes: 200, p50: Math.round(p50), p95: Math.round(p95), max: Math.round(sorted[sorted.length - 1]!) }));
    expect(p95).toBeLessThan(1_000);
  });
});
