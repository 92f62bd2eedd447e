// Push-triggered pull: a device subscribed at /sync/notify/<mesh> gets an invalidation frame once
// another device's write is durable, and the pull it triggers sees that write.
import { describe, expect, it } from "vitest";
import { useScenarioWorker } from "./support/scenario";

const { worker, newMesh, device } = useScenarioWorker();

const pathsOf = (frame: { path?: string; paths?: string[] }): string[] => [
  ...(frame.path ? [frame.path] : []),
  ...(frame.paths ?? []),
];

describe("GET /sync/notify/<mesh> with Upgrade: websocket", () => {
  it("a frame after another device's flush triggers a pull that sees the new change", async () => {
    const mesh = newMesh();
    const a = device(mesh, "a");
    const b = device(mesh, "b");
    await a.connect();
    await b.connect();
    await b.subscribe();

    const name = a.write({ hello: "world" });
    await a.flush();
    const frame = await b.nextFrame((f) => pathsOf(f).some((p) => p.startsWith(a.path("changes/"))), 10_000);
    expect(["invalidation", "invalidate", "compact"]).toContain(frame.type);
    expect(typeof frame.seq).toBe("number");
    const pulled = await b.pull();
    expect(pulled.merged).toEqual([name]);
    expect(b.rows.get("hello")?.value).toBe("world");
  });

  it("frames carry increasing seq numbers across writes", async () => {
    const mesh = newMesh();
    const a = device(mesh, "a");
    const b = device(mesh, "b");
    await a.connect();
    await b.connect();
    await b.subscribe();
    const seqs: number[] = [];
    for (let n = 0; n < 3; n++) {
      const name = a.write({ n: String(n) });
      await a.flush();
      const frame = await b.nextFrame((f) => pathsOf(f).includes(a.path(`changes/${name}`)) || pathsOf(f).includes(a.path("changes/head.json")), 10_000);
      seqs.push(frame.seq as number);
      b.drainFrames();
    }
    expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);
    expect(new Set(seqs).size).toBe(seqs.length);
  });

  it("a device record write is not pushed, while the next ordinary write is", async () => {
    const mesh = newMesh();
    const a = device(mesh, "a");
    const b = device(mesh, "b");
    await a.connect();
    await b.subscribe();
    await a.writeDeviceRecord();
    const marker = a.path(`notes/${crypto.randomUUID()}.bin`);
    expect(await a.mustPut(marker, "marker")).toBe(201);
    const frame = await b.nextFrame((f) => pathsOf(f).includes(marker), 10_000);
    const devicePath = a.path(`devices/${a.deviceId}.json`);
    const everything = [frame, ...b.drainFrames()].flatMap(pathsOf);
    expect(everything).not.toContain(devicePath);
  });

  it("a compaction's deletes are pushed as delete frames", async () => {
    const mesh = newMesh();
    const a = device(mesh, "a");
    const b = device(mesh, "b");
    await a.connect();
    await b.connect();
    const name = a.write({ k: "v" });
    await a.flush();
    await b.subscribe();
    expect(await a.compact()).toMatchObject({ ok: true });
    const changePath = a.path(`changes/${name}`);
    const frame = await b.nextFrame((f) => f.op === "delete" || pathsOf(f).includes(changePath), 10_000);
    expect(frame.type).toBe("invalidation");
  });

  it("answers 426 without the upgrade header", async () => {
    const res = await fetch(`${worker().base}/notify/${newMesh()}`);
    expect(res.status).toBe(426);
    expect(await res.json()).toMatchObject({ error: "upgrade_required" });
  });
});

describe("a device that pulls on push like the client (1 s cooldown, bursts collapse)", () => {
  it("ends up with every change of a burst of flushes, pulling at most once per frame", async () => {
    const mesh = newMesh();
    const a = device(mesh, "a");
    const b = device(mesh, "b");
    await a.connect();
    await b.connect();
    await b.subscribe();
    b.startAutoPull(1_000);

    const written: string[] = [];
    for (let n = 0; n < 6; n++) {
      written.push(a.write({ [`burst${n}`]: String(n) }));
      await a.flush();
    }
    const deadline = Date.now() + 15_000;
    while (written.some((name) => !b.merged.has(name)) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await b.stopAutoPull();
    expect(written.filter((name) => !b.merged.has(name))).toEqual([]);
    expect(b.autoPullErrors).toEqual([]);
    expect(b.autoPulls).toBeGreaterThanOrEqual(1);
    expect(b.autoPulls).toBeLessThanOrEqual(b.frames.length);
  });
});
