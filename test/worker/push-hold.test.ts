// Writes to a mesh with no socket open are held by the isolate and sent to the hub together
// (worker/objects/push.ts): fewer hub requests, the same counts, and a socket that opens
// meanwhile still hears of every write within the max delay.
import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../worker/index";
import type { Env } from "../../worker/env";
import type { InvalidationFrame } from "../../durable-objects/hub-api";
import { adminEnv } from "./admin-support";
import { changeName, newMesh } from "./io-support";

const HOUR = 3_600_000;

/** The real hub namespace, counting the notify calls made through it. */
function countingHubs(vars: Partial<Env>): { target: Env; notifies: () => number } {
  let count = 0;
  const namespace = env.MESH_HUB;
  const counted = new Proxy(namespace, {
    get(ns, prop) {
      if (prop !== "get") {
        const value = Reflect.get(ns, prop) as unknown;
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(ns) : value;
      }
      return (id: DurableObjectId) => {
        const stub = ns.get(id);
        // RPC methods are called on the stub itself (binding one would be an RPC call of "bind").
        const methods = stub as unknown as Record<string | symbol, (...a: unknown[]) => unknown>;
        return new Proxy(stub, {
          get(s, name) {
            if (name === "notify") count++;
            const value = Reflect.get(s, name) as unknown;
            return typeof value === "function" ? (...a: unknown[]) => methods[name]!(...a) : value;
          },
        });
      };
    },
  });
  return { target: { ...adminEnv(vars), MESH_HUB: counted } as Env, notifies: () => count };
}

/** A change-file PUT whose background work is left running; `settled` waits for it. */
async function putLeavingBackground(target: Env, mesh: string, path: string): Promise<{ status: number; settled: Promise<void> }> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`http://meshbox.test/sync/io/${mesh}/file?path=${encodeURIComponent(path)}`, { method: "PUT", body: path }), target, ctx);
  await res.arrayBuffer();
  return { status: res.status, settled: waitOnExecutionContext(ctx) };
}

async function subscribe(mesh: string): Promise<InvalidationFrame[]> {
  const res = await SELF.fetch(`http://meshbox.test/sync/notify/${mesh}`, { headers: { Upgrade: "websocket" } });
  expect(res.status).toBe(101);
  const frames: InvalidationFrame[] = [];
  res.webSocket!.accept();
  res.webSocket!.addEventListener("message", (e) => frames.push(JSON.parse(String(e.data)) as InvalidationFrame));
  return frames;
}

async function until(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await scheduler.wait(10);
  }
}

describe("Writes to a mesh nobody listens to", () => {
  it("are sent to the hub together, and every one of them is counted", async () => {
    const mesh = newMesh();
    const { target, notifies } = countingHubs({ PUSH_HOLD_MS: "300" });
    const first = await putLeavingBackground(target, mesh, `/R/changes/${changeName(1)}`);
    expect(first.status).toBe(201);
    await until(() => notifies() === 1, "the first notify");
    await scheduler.wait(50);
    for (let i = 2; i <= 5; i++) {
      const next = await putLeavingBackground(target, mesh, `/R/changes/${changeName(i)}`);
      expect(next.status).toBe(201);
      await next.settled;
    }
    expect(notifies()).toBe(1);
    await first.settled;
    // The first write alone, then the four held ones in one call; the hold after it stayed empty.
    expect(notifies()).toBe(2);
    const hub = env.MESH_HUB.get(env.MESH_HUB.idFromName(mesh));
    const hours = await hub.activity(mesh, Math.floor(Date.now() / HOUR) - 1);
    expect(hours.reduce((n, h) => n + h.writes, 0)).toBe(5);
  });

  it("still reach a socket that opens while they are held, within the max delay", async () => {
    const mesh = newMesh();
    const { target, notifies } = countingHubs({ PUSH_HOLD_MS: "300" });
    const firstPath = `/R/changes/${changeName(1)}`;
    const first = await putLeavingBackground(target, mesh, firstPath);
    await until(() => notifies() === 1, "the first notify");
    const frames = await subscribe(mesh);
    // Opened right after the first write: a frame for it at once.
    await until(() => frames.length === 1, "the catch-up frame");
    expect(frames[0]).toMatchObject({ op: "write", path: firstPath });
    const heldPath = `/R/changes/${changeName(2)}`;
    const heldAt = Date.now();
    const held = await putLeavingBackground(target, mesh, heldPath);
    expect(held.status).toBe(201);
    await until(() => frames.some((f) => (f.paths ?? [f.path]).includes(heldPath)), "the held write's frame");
    expect(Date.now() - heldAt).toBeLessThan(1_000);
    await Promise.all([first.settled, held.settled]);
  });

});

describe("Writes to a mesh a device listens to", () => {
  it("are held for at most a quiet window: a burst is one more hub call, and its frame comes within the max delay", async () => {
    const mesh = newMesh();
    // A wide window in this Worker's view (the hub keeps its own 100 ms), so the burst surely
    // lands inside it on a slow runner.
    const { target, notifies } = countingHubs({ PUSH_QUIET_MS: "500", PUSH_HOLD_MS: "900" });
    const frames = await subscribe(mesh);
    const firstPath = `/R/changes/${changeName(1)}`;
    const first = await putLeavingBackground(target, mesh, firstPath);
    expect(first.status).toBe(201);
    // The first write is told at once: its frame needs no other write.
    // Its frame also says the notify has returned, so the hold has begun.
    await until(() => frames.some((f) => f.path === firstPath), "the first write's frame");
    expect(notifies()).toBe(1);
    const burst: string[] = [];
    let lastAckAt = 0;
    for (let i = 2; i <= 4; i++) {
      const path = `/R/changes/${changeName(i)}`;
      const put = await putLeavingBackground(target, mesh, path);
      expect(put.status).toBe(201);
      lastAckAt = Date.now();
      burst.push(path);
      // Held: nothing of this request's own is left to wait for.
      await put.settled;
    }
    expect(notifies()).toBe(1);
    await first.settled;
    expect(notifies()).toBe(2);
    await until(() => burst.every((p) => frames.some((f) => (f.paths ?? [f.path]).includes(p))), "frames for every write");
    expect(Date.now() - lastAckAt).toBeLessThan(1_000);
    const hub = env.MESH_HUB.get(env.MESH_HUB.idFromName(mesh));
    const hours = await hub.activity(mesh, Math.floor(Date.now() / HOUR) - 1);
    expect(hours.reduce((n, h) => n + h.writes, 0)).toBe(4);
  });

  it("are each sent at once when holding is off", async () => {
    const mesh = newMesh();
    const { target, notifies } = countingHubs({ PUSH_HOLD_MS: "0" });
    const frames = await subscribe(mesh);
    for (let i = 1; i <= 3; i++) {
      const put = await putLeavingBackground(target, mesh, `/R/changes/${changeName(i)}`);
      expect(put.status).toBe(201);
      await put.settled;
    }
    expect(notifies()).toBe(3);
    await until(() => frames.length >= 1, "a frame");
  });
});
