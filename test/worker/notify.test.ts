// The push routes through the real Worker (PROTOCOL.md section 6): upgrade, health, and which
// /file writes produce frames.
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { InvalidationFrame } from "../../durable-objects/hub-api";

const SYNC = "http://meshbox.test/sync";
const newMesh = () => `notify-${crypto.randomUUID()}`;

async function until(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await scheduler.wait(10);
  }
}

async function connect(mesh: string): Promise<{ frames: InvalidationFrame[]; socket: WebSocket }> {
  const res = await SELF.fetch(`${SYNC}/notify/${mesh}`, { headers: { Upgrade: "websocket" } });
  expect(res.status).toBe(101);
  const socket = res.webSocket!;
  const frames: InvalidationFrame[] = [];
  socket.accept();
  socket.addEventListener("message", (e) => {
    frames.push(JSON.parse(String(e.data)) as InvalidationFrame);
  });
  return { frames, socket };
}

async function put(mesh: string, path: string, body: string): Promise<number> {
  const res = await SELF.fetch(`${SYNC}/io/${mesh}/file?path=${encodeURIComponent(path)}`, { method: "PUT", body });
  await res.text();
  return res.status;
}

describe("GET /sync/notify/<mesh>", () => {
  it("answers 426 upgrade_required without Upgrade: websocket", async () => {
    const res = await SELF.fetch(`${SYNC}/notify/${newMesh()}`);
    expect(res.status).toBe(426);
    expect(await res.json()).toEqual({
      error: "upgrade_required",
      message: "This route only accepts a WebSocket upgrade (Upgrade: websocket).",
    });
  });

  it("answers 400 for an invalid mesh id before anything else", async () => {
    const res = await SELF.fetch(`${SYNC}/notify/-bad`, { headers: { Upgrade: "websocket" } });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "invalid_mesh_id" });
  });

  it("upgrades (101) and delivers one frame for a flush (change file PUT, then head.json PUT)", async () => {
    const mesh = newMesh();
    const { frames } = await connect(mesh);
    const change = "/R/changes/000000000000100-0000-dev-chg_01.json";
    expect(await put(mesh, change, "{\"v\":1}")).toBe(201);
    expect(await put(mesh, "/R/changes/head.json", JSON.stringify({ latestHlc: "000000000000100-0000-dev" }))).toBe(201);
    await until(() => frames.length >= 1, "a frame");
    // A marker write after the flush: its frame must be the very next one.
    expect(await put(mesh, "/R/marker.txt", "m")).toBe(201);
    await until(() => frames.length >= 2, "the marker frame");
    expect(frames).toHaveLength(2);
    expect(frames[0]).toMatchObject({ type: "invalidation", op: "write", seq: 1, paths: [change, "/R/changes/head.json"] });
    expect(frames[1]).toMatchObject({ path: "/R/marker.txt", seq: 2 });
  });

  it("sends no frame for device records or no-op repeats", async () => {
    const mesh = newMesh();
    const { frames } = await connect(mesh);
    const head = JSON.stringify({ latestHlc: "000000000000100-0000-dev" });
    expect(await put(mesh, "/R/changes/head.json", head)).toBe(201);
    await until(() => frames.length === 1, "the head frame");
    expect(await put(mesh, "/R/devices/dev.json", "{\"a\":1}")).toBe(201);
    expect(await put(mesh, "/R/devices/dev.json", "{\"a\":2}")).toBe(204);
    expect(await put(mesh, "/R/changes/head.json", head)).toBe(200);
    expect(await put(mesh, "/R/marker.txt", "m")).toBe(201);
    await until(() => frames.length >= 2, "the marker frame");
    expect(frames).toHaveLength(2);
    expect(frames[1]).toMatchObject({ path: "/R/marker.txt", seq: 2 });
    expect(frames[1]!.paths).toBeUndefined();
  });

  it("sends a delete frame after a successful DELETE", async () => {
    const mesh = newMesh();
    expect(await put(mesh, "/R/a.txt", "a")).toBe(201);
    const { frames } = await connect(mesh);
    const res = await SELF.fetch(`${SYNC}/io/${mesh}/file?path=/R/a.txt`, { method: "DELETE" });
    await res.text();
    expect(res.status).toBe(204);
    // The socket opened right after the PUT, so its first frame is that write's (catch-up).
    await until(() => frames.length === 2, "the catch-up frame and the delete frame");
    expect(frames[0]).toMatchObject({ type: "invalidation", op: "write", path: "/R/a.txt", pathType: "other" });
    expect(frames[1]).toMatchObject({ type: "invalidation", op: "delete", path: "/R/a.txt", pathType: "other" });
  });
});

describe("GET /sync/notify/<mesh>/health", () => {
  it("answers { ok, mesh, connected, pendingFrames, seq } for the mesh's hub", async () => {
    const mesh = newMesh();
    await connect(mesh);
    await connect(mesh);
    const res = await SELF.fetch(`${SYNC}/notify/${mesh}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, mesh, connected: 2, pendingFrames: 0, seq: 0 });
  });
});
