// The /file routes tell the mesh's hub once a write or delete is durable: one frame per change,
// none for a no-op repeat or a device record (PROTOCOL.md section 6).
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { InvalidationFrame } from "../../durable-objects/hub-api";
import { changeName, deleteFile, newMesh, putFile } from "./io-support";

interface Subscriber {
  next(timeoutMs?: number): Promise<InvalidationFrame>;
  close(): void;
}

async function subscribe(mesh: string): Promise<Subscriber> {
  const res = await SELF.fetch(`http://meshbox.test/sync/notify/${mesh}`, { headers: { Upgrade: "websocket" } });
  expect(res.status).toBe(101);
  const socket = res.webSocket!;
  socket.accept();
  const frames: InvalidationFrame[] = [];
  const waiters: ((frame: InvalidationFrame) => void)[] = [];
  socket.addEventListener("message", (event) => {
    const frame = JSON.parse(String(event.data)) as InvalidationFrame;
    const waiter = waiters.shift();
    if (waiter) waiter(frame);
    else frames.push(frame);
  });
  return {
    next(timeoutMs = 5_000) {
      const ready = frames.shift();
      if (ready) return Promise.resolve(ready);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no invalidation frame arrived")), timeoutMs);
        waiters.push((frame) => {
          clearTimeout(timer);
          resolve(frame);
        });
      });
    },
    close: () => socket.close(1000, "done"),
  };
}

const pathsOf = (frame: InvalidationFrame) => frame.paths ?? [frame.path];

describe("PUT /sync/io/:mesh/file pushes", () => {
  it("sends a write frame for a new change file, and none for a repeat or a device record", async () => {
    const mesh = newMesh();
    const sub = await subscribe(mesh);
    const first = `/App/changes/${changeName(1)}`;
    expect((await putFile(mesh, first, "a")).status).toBe(201);
    const frame = await sub.next();
    expect(frame).toMatchObject({ type: "invalidation", op: "write", path: first, pathType: "change" });

    expect((await putFile(mesh, first, "a again")).status).toBe(200);
    await putFile(mesh, "/App/devices/devA.json", "{}");
    const second = `/App/changes/${changeName(2)}`;
    await putFile(mesh, second, "b");
    const after = await sub.next();
    expect(pathsOf(after)).toEqual([second]);
    sub.close();
  });
});

describe("PUT /sync/io/:mesh/file of an other file pushes", () => {
  it("sends no frame for an identical repeat, and one for changed bytes", async () => {
    const mesh = newMesh();
    const sub = await subscribe(mesh);
    const path = "/App/pairing/offer.json";
    expect((await putFile(mesh, path, "offer")).status).toBe(201);
    expect(pathsOf(await sub.next())).toEqual([path]);

    expect((await putFile(mesh, path, "offer")).status).toBe(200);
    const marker = `/App/changes/${changeName(3)}`;
    expect((await putFile(mesh, marker, "m")).status).toBe(201);
    // The repeat queued nothing: the next frame carries only the later change file.
    expect(pathsOf(await sub.next())).toEqual([marker]);

    expect((await putFile(mesh, path, "counter-offer")).status).toBe(204);
    expect(pathsOf(await sub.next())).toEqual([path]);
    sub.close();
  });
});

describe("DELETE /sync/io/:mesh/file pushes", () => {
  it("sends one delete frame for a recursive delete", async () => {
    const mesh = newMesh();
    const sub = await subscribe(mesh);
    for (const p of ["/App/dir/a", "/App/dir/b"]) await putFile(mesh, p, "x");
    const seen = new Set<string>();
    for (let i = 0; i < 2 && !seen.has("/App/dir/b"); i++) for (const p of pathsOf(await sub.next())) seen.add(p);
    expect([...seen].sort()).toEqual(["/App/dir/a", "/App/dir/b"]);
    expect((await deleteFile(mesh, "/App/dir")).status).toBe(204);
    const frame = await sub.next();
    expect(frame).toMatchObject({ type: "invalidation", op: "delete", path: "/App/dir", pathType: "other" });
    expect(pathsOf(frame)).toEqual(["/App/dir"]);
    sub.close();
  });
});
