// The MeshHub Durable Object over its typed RPC methods and its WebSocket fetch, with the real
// local Durable Object runtime: push coalescing, eviction, socket expiry and revocation, stats, wipe.
import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { HUB_ATTACHMENT_HEADER, HUB_MESH_HEADER, type InvalidationFrame } from "../../durable-objects/hub-api";
import type { MeshHub } from "../../durable-objects/mesh-hub";
import { PushHub } from "../../durable-objects/push";

const newMesh = () => `hub-${crypto.randomUUID()}`;
const hubOf = (mesh: string) => env.MESH_HUB.get(env.MESH_HUB.idFromName(mesh));
const enc = new TextEncoder();

interface Subscriber {
  frames: InvalidationFrame[];
  closed: { code: number; reason: string } | null;
  socket: WebSocket;
}

async function subscribe(mesh: string, attachment: { sessionId?: string | null; expiresAt?: number | null } = {}): Promise<Subscriber> {
  const res = await hubOf(mesh).fetch("https://mesh-hub/notify", {
    headers: {
      Upgrade: "websocket",
      [HUB_MESH_HEADER]: mesh,
      [HUB_ATTACHMENT_HEADER]: JSON.stringify({ sessionId: attachment.sessionId ?? null, expiresAt: attachment.expiresAt ?? null }),
    },
  });
  expect(res.status).toBe(101);
  const socket = res.webSocket!;
  const sub: Subscriber = { frames: [], closed: null, socket };
  socket.accept();
  socket.addEventListener("message", (e) => {
    sub.frames.push(JSON.parse(String(e.data)) as InvalidationFrame);
  });
  socket.addEventListener("close", (e) => {
    sub.closed = { code: e.code, reason: e.reason };
  });
  return sub;
}

/** Polls until `check` holds or the bounded deadline passes. */
async function until(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await scheduler.wait(10);
  }
}

describe("MeshHub.notify (coalesced invalidation frames)", () => {
  it("sends one frame for a burst (change file, then head.json) with the exact frame shape", async () => {
    const mesh = newMesh();
    const sub = await subscribe(mesh);
    const hub = hubOf(mesh);
    const change = "/R/changes/000000000000001-0000-dev-chg_1.json";
    await hub.notify(mesh, { op: "write", path: change, pathType: "change" });
    await hub.notify(mesh, { op: "write", path: "/R/changes/head.json", pathType: "head" });
    await until(() => sub.frames.length >= 1, "the first frame");
    // A later, separate write yields the next frame with the next seq: nothing came in between.
    await hub.notify(mesh, { op: "delete", path: "/R/x.json", pathType: "other" });
    await until(() => sub.frames.length >= 2, "the second frame");
    expect(sub.frames).toHaveLength(2);
    const [first, second] = sub.frames;
    expect(first).toEqual({
      type: "invalidation",
      op: "write",
      path: "/R/changes/head.json",
      pathType: "head",
      ts: expect.any(Number),
      seq: 1,
      paths: [change, "/R/changes/head.json"],
    });
    expect(second).toEqual({ type: "invalidation", op: "delete", path: "/R/x.json", pathType: "other", ts: expect.any(Number), seq: 2 });
  });

  it("reaches every subscriber of the mesh and none of another mesh", async () => {
    const mesh = newMesh();
    const other = newMesh();
    const subs = await Promise.all([subscribe(mesh), subscribe(mesh), subscribe(mesh)]);
    const bystander = await subscribe(other);
    await hubOf(mesh).notify(mesh, { op: "write", path: "/R/a", pathType: "other" });
    await until(() => subs.every((s) => s.frames.length === 1), "frames on every subscriber");
    await hubOf(other).notify(other, { op: "write", path: "/R/b", pathType: "other" });
    await until(() => bystander.frames.length === 1, "the other mesh's frame");
    expect(bystander.frames[0]).toMatchObject({ path: "/R/b", seq: 1 });
    expect(subs.map((s) => s.frames.length)).toEqual([1, 1, 1]);
  });

  it("sends a frame within the max delay under a continuous stream of writes", async () => {
    const mesh = newMesh();
    const sub = await subscribe(mesh);
    const hub = hubOf(mesh);
    const firstAt = Date.now();
    // Writes every 20 ms never leave a 100 ms quiet window, so only the 1 s cap can release a frame;
    // unless the machine stalls between two writes for a window (a loaded CI runner), which
    // legitimately closes it: the earliest allowed frame is then a window after that write.
    // (Each write reaches the hub between its call and its answer, so a stall is judged from the
    // previous call to this answer.)
    let earliest = firstAt + 1_000;
    let previousCall: number | null = null;
    for (let i = 0; i < 100 && sub.frames.length === 0; i++) {
      const calledAt = Date.now();
      await hub.notify(mesh, { op: "write", path: `/R/s-${i}`, pathType: "other" });
      if (previousCall !== null && Date.now() - previousCall >= 100) earliest = Math.min(earliest, previousCall + 100);
      previousCall = calledAt;
      await scheduler.wait(20);
    }
    expect(sub.frames.length).toBeGreaterThanOrEqual(1);
    const arrivedAt = Date.now();
    expect(arrivedAt).toBeGreaterThanOrEqual(earliest);
    expect(arrivedAt - firstAt).toBeLessThan(2_000);
    expect(sub.frames[0]).toMatchObject({ seq: 1 });
    expect(sub.frames[0]!.paths!.length).toBeGreaterThan(1);
  });

  it("still sends a pending frame after the hub is evicted (pending invalidations live in SQLite)", async () => {
    const mesh = newMesh();
    const sub = await subscribe(mesh);
    const hub = hubOf(mesh);
    await hub.notify(mesh, { op: "write", path: "/R/changes/head.json", pathType: "head" });
    await evictDurableObject(hub);
    await until(() => sub.frames.length === 1, "the frame after eviction");
    expect(sub.frames[0]).toMatchObject({ path: "/R/changes/head.json", seq: 1 });
    expect(await hub.health(mesh)).toEqual({ ok: true, mesh, connected: 1, pendingFrames: 0, seq: 1 });
  });
});

describe("MeshHub push while no socket is open", () => {
  it("queues no frame for a write nobody can hear", async () => {
    const mesh = newMesh();
    const hub = hubOf(mesh);
    await hub.notify(mesh, { op: "write", path: "/R/changes/a-chg_1.json", pathType: "change" });
    expect(await hub.health(mesh)).toEqual({ ok: true, mesh, connected: 0, pendingFrames: 0, seq: 0 });
  });

  it("sends a socket that opens within 30 s of the last write a frame for it at once, and only that socket", async () => {
    const mesh = newMesh();
    const hub = hubOf(mesh);
    const early = await subscribe(mesh);
    await hub.notify(mesh, { op: "write", path: "/R/changes/a-chg_1.json", pathType: "change" });
    await until(() => early.frames.length === 1, "the early socket's frame");
    const late = await subscribe(mesh);
    await until(() => late.frames.length === 1, "the late socket's catch-up frame");
    expect(late.frames[0]).toEqual({ type: "invalidation", op: "write", path: "/R/changes/a-chg_1.json", pathType: "change", ts: expect.any(Number), seq: 2 });
    await scheduler.wait(300);
    expect(early.frames).toHaveLength(1);
    expect(late.frames).toHaveLength(1);
  });

  it("sends no catch-up frame when a pending frame already covers the last write", async () => {
    const mesh = newMesh();
    const hub = hubOf(mesh);
    await hub.health(mesh);
    // A PushHub of its own (no alarm sends its frames), so the window stays open until flush().
    await runInDurableObject(hub, async (_instance: MeshHub, state) => {
      const push = new PushHub(state, { quietMs: 100, maxDelayMs: 1_000 });
      const open = (got: string[]) => {
        const ws = push.accept({ sessionId: null, expiresAt: null, connectedAt: Date.now() }).webSocket!;
        ws.accept();
        ws.addEventListener("message", (e) => got.push(String(e.data)));
      };
      const early: string[] = [];
      const late: string[] = [];
      open(early);
      push.record({ op: "write", path: "/R/changes/b-chg_2.json", pathType: "change" }, Date.now());
      expect(push.pendingCount()).toBe(1);
      open(late);
      await scheduler.wait(50);
      expect(late).toEqual([]);
      push.flush(Date.now());
      await until(() => early.length === 1 && late.length === 1, "the pending frame on both sockets");
      expect(JSON.parse(late[0]!)).toMatchObject({ op: "write", path: "/R/changes/b-chg_2.json", seq: 1 });
    });
  });

  it("remembers the last write across an eviction, and sends nothing for one older than 30 s", async () => {
    const mesh = newMesh();
    const hub = hubOf(mesh);
    await hub.putControl(mesh, "/R/changes/head.json", "head", enc.encode('{"latestHlc":"000000000000001-0000-dev"}'), {}, 60_000);
    await evictDurableObject(hub);
    const soon = await subscribe(mesh);
    await until(() => soon.frames.length === 1, "the catch-up frame after eviction");
    expect(soon.frames[0]).toMatchObject({ op: "write", path: "/R/changes/head.json", pathType: "head" });
    soon.socket.close(1000, "done");
    await runInDurableObject(hub, (_instance: MeshHub, state) => {
      const last = JSON.parse(String(state.storage.sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'push.last_event'`).one().value)) as { at: number };
      state.storage.sql.exec(`UPDATE meta SET value = ?1 WHERE key = 'push.last_event'`, JSON.stringify({ ...last, at: Date.now() - 31_000 }));
    });
    await evictDurableObject(hub);
    const later = await subscribe(mesh);
    await scheduler.wait(300);
    expect(later.frames).toEqual([]);
  });
});

describe("PushHub.dueAt (the coalescing window)", () => {
  it("waits a quiet window after the last event, caps the delay after the first, and spaces frames a window apart", async () => {
    const mesh = newMesh();
    const hub = hubOf(mesh);
    await hub.health(mesh);
    await runInDurableObject(hub, (_instance: MeshHub, state) => {
      const push = new PushHub(state, { quietMs: 100, maxDelayMs: 1_000 });
      const event = { op: "write" as const, path: "/R/a", pathType: "other" as const };
      expect(push.dueAt()).toBeNull();
      push.enqueue(event, 10_000);
      expect(push.dueAt()).toBe(10_100);
      // A continuous stream: every 50 ms, the quiet window never closes; the cap decides.
      for (let t = 10_050; t <= 11_500; t += 50) push.enqueue(event, t);
      expect(push.dueAt()).toBe(11_000);
      const frame = push.flush(11_000);
      expect(frame).toMatchObject({ seq: 1, path: "/R/a" });
      expect(frame?.paths).toBeUndefined();
      expect(push.dueAt()).toBeNull();
      // Right after a frame, the next one waits at least a window.
      push.enqueue(event, 11_010);
      expect(push.dueAt()).toBe(11_110);
      push.flush(11_110);
      expect(push.pendingCount()).toBe(0);
      expect(push.seq()).toBe(2);
      // Writes a Worker held count from when they were acknowledged, in whatever order they came.
      push.enqueue(event, 12_500);
      push.enqueue(event, 12_400);
      expect(push.dueAt()).toBe(12_600);
      push.enqueue(event, 13_300);
      expect(push.dueAt()).toBe(13_400);
      push.enqueue(event, 13_350);
      expect(push.dueAt()).toBe(13_400);
    });
  });
});

describe("MeshHub sockets: expiry and revocation", () => {
  it("closes a socket whose session expired with 4401", async () => {
    const mesh = newMesh();
    const sub = await subscribe(mesh, { sessionId: "jti-1", expiresAt: Date.now() + 100 });
    const keeper = await subscribe(mesh, { sessionId: "jti-2", expiresAt: Date.now() + 3_600_000 });
    await until(() => sub.closed !== null, "the 4401 close");
    expect(sub.closed).toEqual({ code: 4401, reason: "Session expired." });
    expect(keeper.closed).toBeNull();
  });

  it("closeSessions closes exactly the named sessions' sockets and returns how many", async () => {
    const mesh = newMesh();
    const a1 = await subscribe(mesh, { sessionId: "jti-a" });
    const a2 = await subscribe(mesh, { sessionId: "jti-a" });
    const b = await subscribe(mesh, { sessionId: "jti-b" });
    const open = await subscribe(mesh);
    expect(await hubOf(mesh).closeSessions(["jti-a", "jti-zzz"], 4403)).toBe(2);
    await until(() => a1.closed !== null && a2.closed !== null, "the 4403 closes");
    expect(a1.closed).toEqual({ code: 4403, reason: "Session revoked." });
    expect(b.closed).toBeNull();
    expect(open.closed).toBeNull();
    expect((await hubOf(mesh).health(mesh)).connected).toBe(2);
  });

  it("answers ping with pong without a frame", async () => {
    const mesh = newMesh();
    const res = await hubOf(mesh).fetch("https://mesh-hub/notify", { headers: { Upgrade: "websocket" } });
    const socket = res.webSocket!;
    const got: string[] = [];
    socket.accept();
    socket.addEventListener("message", (e) => {
      got.push(String(e.data));
    });
    socket.send("ping");
    await until(() => got.length === 1, "pong");
    expect(got).toEqual(["pong"]);
  });

  it("refuses a fetch without an upgrade with 426", async () => {
    const res = await hubOf(newMesh()).fetch("https://mesh-hub/notify");
    expect(res.status).toBe(426);
    expect(await res.json()).toEqual({ error: "upgrade_required", message: "MeshHub only accepts WebSocket upgrades." });
  });
});

describe("MeshHub.stats and MeshHub.wipe", () => {
  it("reports control objects, bytes, the committed generation, sockets and seq", async () => {
    const mesh = newMesh();
    const hub = hubOf(mesh);
    const gen = enc.encode(JSON.stringify({ snapshotPath: null }));
    const ptr = enc.encode(JSON.stringify({ currentGeneration: 1, file: "manifest-1.json" }));
    expect(await hub.stats()).toEqual({ connected: 0, seq: 0, currentGeneration: null, controlObjects: 0, controlBytes: 0 });
    expect(await hub.putControl(mesh, "/R/manifest-1.json", "generation", gen, {}, 60_000)).toMatchObject({ ok: true, status: 201 });
    expect(await hub.putControl(mesh, "/R/manifest.json", "manifest", ptr, {}, 60_000)).toMatchObject({ ok: true, status: 201 });
    await subscribe(mesh);
    // The socket opened right after a write, so it was sent a frame for it (seq 1).
    expect(await hub.stats()).toEqual({
      connected: 1,
      seq: 1,
      currentGeneration: 1,
      controlObjects: 2,
      controlBytes: gen.byteLength + ptr.byteLength,
    });
  });

  it("wipe deletes every control object and closes sockets with 4403; the hub keeps working", async () => {
    const mesh = newMesh();
    const hub = hubOf(mesh);
    await hub.putControl(mesh, "/R/manifest-1.json", "generation", enc.encode("{}"), {}, 60_000);
    await hub.putControl(mesh, "/R/manifest.json", "manifest", enc.encode(JSON.stringify({ currentGeneration: 1, file: "manifest-1.json" })), {}, 60_000);
    const sub = await subscribe(mesh);
    expect(await hub.wipe()).toEqual({ controlObjects: 2, snapshots: 0, closedSockets: 1 });
    await until(() => sub.closed !== null, "the wipe close");
    expect(sub.closed?.code).toBe(4403);
    expect(await hub.readControl(mesh, "/R/manifest.json")).toBeNull();
    // A fresh bootstrap is accepted after a wipe.
    expect(await hub.putControl(mesh, "/R/manifest-1.json", "generation", enc.encode("{\"a\":1}"), {}, 60_000)).toMatchObject({
      ok: true,
      status: 201,
    });
  });
});

describe("MeshHub.putControl versions", () => {
  it("bumps the per-mesh version on every change and keeps it on a no-op repeat", async () => {
    const mesh = newMesh();
    const hub = hubOf(mesh);
    const head = (h: string) => enc.encode(JSON.stringify({ latestHlc: h }));
    const a = await hub.putControl(mesh, "/R/changes/head.json", "head", head("1"), {}, 1);
    const b = await hub.putControl(mesh, "/R/devices/d.json", "device", enc.encode("{}"), {}, 1);
    const c = await hub.putControl(mesh, "/R/changes/head.json", "head", head("0"), {}, 1);
    expect(a.ok && b.ok && c.ok).toBe(true);
    if (!a.ok || !b.ok || !c.ok) return;
    expect([a.record.version, b.record.version, c.record.version]).toEqual([1, 2, 1]);
    expect(c).toMatchObject({ status: 200, changed: false });
    const deletion = await hub.deleteControl(mesh, ["/R/devices/d.json", "/R/none"]);
    expect(deletion).toMatchObject({ ok: true, version: 3, deleted: [{ path: "/R/devices/d.json", version: 2 }] });
  });
});
