// End-to-end sync scenarios: several simulated devices (test/e2e/support/device.ts) drive the real
// worker under `wrangler dev` exactly as the Interocitor client does, and must converge.
import { describe, expect, it } from "vitest";
import { useScenarioWorker } from "./support/scenario";
import { Device, hlcOfChange, unseal } from "./support/device";

const { worker, newMesh, device } = useScenarioWorker();

function rowsOf(d: Device): Record<string, string> {
  return Object.fromEntries([...d.rows].map(([k, v]) => [k, v.value]).sort(([a], [b]) => (a! < b! ? -1 : 1)));
}

describe("three devices on one mesh", () => {
  it("converge on the same change set and rows after concurrent flushes and a pull each", async () => {
    const mesh = newMesh();
    const devices = [device(mesh, "a"), device(mesh, "b"), device(mesh, "c")];
    for (const d of devices) await d.connect();

    const written: string[] = [];
    await Promise.all(
      devices.map(async (d, i) => {
        for (let n = 0; n < 6; n++) {
          written.push(d.write({ [`row-${n % 3}`]: `${d.deviceId}:${n}`, [`own-${i}-${n}`]: "x" }));
          await d.flush();
        }
      }),
    );
    for (const d of devices) await d.pull();

    const expected = [...written].sort();
    for (const d of devices) {
      expect([...d.merged].sort()).toEqual(expected);
      expect(d.outbox).toEqual([]);
    }
    expect(rowsOf(devices[1]!)).toEqual(rowsOf(devices[0]!));
    expect(rowsOf(devices[2]!)).toEqual(rowsOf(devices[0]!));

    const listed = (await devices[0]!.listFiles(devices[0]!.path("changes"))).map((f) => f.name);
    expect(listed.filter((n) => n.includes("-chg_")).sort()).toEqual(expected);
    expect(listed).toContain("head.json");

    const head = JSON.parse((await devices[0]!.readText(devices[0]!.path("changes/head.json")))!) as { latestHlc: string };
    const maxHlc = written.map(hlcOfChange).sort().at(-1);
    expect(head.latestHlc).toBe(maxHlc);
  });

  it("keeps every device record readable and listed under devices/", async () => {
    const mesh = newMesh();
    const devices = [device(mesh, "a"), device(mesh, "b"), device(mesh, "c")];
    for (const d of devices) await d.connect();
    const listed = (await devices[0]!.listFiles(devices[0]!.path("devices"))).map((f) => f.name).sort();
    expect(listed).toEqual(devices.map((d) => `${d.deviceId}.json`).sort());
    for (const d of devices) {
      const record = JSON.parse((await d.readText(d.path(`devices/${d.deviceId}.json`)))!) as { deviceId: string };
      expect(record.deviceId).toBe(d.deviceId);
    }
  });

  it("a second device connecting finds the first device's manifest instead of bootstrapping its own", async () => {
    const mesh = newMesh();
    const a = device(mesh, "a");
    const b = device(mesh, "b");
    await a.connect();
    await b.connect();
    expect(b.generation).toBe(1);
    expect(b.manifest?.writtenBy).toBe(a.deviceId);
    expect(b.requestCounts.get("PUT file") ?? 0).toBe(1); // only its device record
  });
});

describe("a late joiner", () => {
  it("rehydrates from the committed snapshot and then pulls only the changes written after it", async () => {
    const mesh = newMesh();
    const a = device(mesh, "a");
    const b = device(mesh, "b");
    await a.connect();
    await b.connect();
    const before: string[] = [];
    for (let n = 0; n < 5; n++) {
      before.push(a.write({ [`k${n}`]: `a${n}` }));
      before.push(b.write({ [`k${n}`]: `b${n}` }));
      await a.flush();
      await b.flush();
    }
    const compacted = await a.compact();
    expect(compacted).toMatchObject({ ok: true, generation: 2, epoch: 1 });
    if (!compacted.ok) throw new Error("unreachable");
    expect(compacted.covered.sort()).toEqual([...before].sort());
    expect(compacted.deleted.sort()).toEqual([...before].sort());

    const after: string[] = [];
    for (let n = 0; n < 3; n++) {
      after.push(b.write({ [`late${n}`]: `b${n}` }));
      await b.flush();
    }

    const c = device(mesh, "c");
    await c.connect({ pull: false });
    expect(c.epoch).toBe(1);
    expect(c.snapshotPath).toBe(a.path("mainline/snapshot-1-server_relay_1.json"));
    expect([...c.merged].sort()).toEqual([...before].sort());
    const pulled = await c.pull();
    expect(pulled.merged).toEqual([...after].sort());
    // The covered change files are still listed (the listing window): skipped, never fetched.
    expect(pulled.skipped).toBe(before.length);
    for (const name of before) expect(c.getsByPath.has(c.path(`changes/${name}`))).toBe(false);

    await a.pull();
    await b.pull();
    expect([...c.merged].sort()).toEqual([...before, ...after].sort());
    expect(rowsOf(c)).toEqual(rowsOf(b));
    expect(rowsOf(a)).toEqual(rowsOf(b));
  });

  it("a device that was offline across a compaction restores from the snapshot on reconnect", async () => {
    const mesh = newMesh();
    const a = device(mesh, "a");
    const b = device(mesh, "b");
    await a.connect();
    await b.connect();
    a.write({ x: "1" });
    await a.flush();
    await b.pull();
    // b goes offline and keeps writing locally.
    const offline = [b.write({ y: "offline-1" }), b.write({ y: "offline-2" })];
    a.write({ x: "2" });
    await a.flush();
    expect(await a.compact()).toMatchObject({ ok: true, epoch: 1 });

    await b.connect();
    expect(b.epoch).toBe(1);
    expect(b.outbox).toEqual([]);
    await a.pull();
    expect([...a.merged].sort()).toEqual([...b.merged].sort());
    for (const name of offline) expect(a.merged.has(name)).toBe(true);
    expect(rowsOf(a)).toEqual(rowsOf(b));
  });
});

describe("offline writes", () => {
  it("are flushed on reconnect and reach the other devices", async () => {
    const mesh = newMesh();
    const a = device(mesh, "a");
    const b = device(mesh, "b");
    await a.connect();
    await b.connect();

    const offline = [b.write({ note: "draft-1" }), b.write({ note: "draft-2" }), b.write({ other: "y" })];
    const online = [a.write({ note: "from-a" })];
    await a.flush();
    expect(b.outbox.length).toBe(3);

    await b.connect();
    expect(b.outbox).toEqual([]);
    expect(b.merged.has(online[0]!)).toBe(true);
    await a.pull();
    for (const name of offline) expect(a.merged.has(name)).toBe(true);
    expect(rowsOf(a)).toEqual(rowsOf(b));
    // Last writer by HLC wins on every device, whichever side was offline.
    const newest = [offline[0]!, offline[1]!, online[0]!].sort().at(-1)!;
    const expectedNote = newest === online[0] ? "from-a" : newest === offline[1] ? "draft-2" : "draft-1";
    expect(rowsOf(a).note).toBe(expectedNote);
  });

  it("a flush retried after a lost acknowledgement keeps the first bytes and answers 200", async () => {
    const mesh = newMesh();
    const a = device(mesh, "a");
    await a.connect();
    const name = a.write({ k: "v" });
    const batch = a.outbox[0]!;
    const path = a.path(`changes/${name}`);
    const first = a.sealChange(batch);
    expect(await a.mustPut(path, first)).toBe(201);
    // The ack was "lost": the batch is still queued and is re-sealed (new IV) on the next flush.
    const resealed = a.sealChange(batch);
    expect(resealed).not.toBe(first);
    const retry = await a.putFile(path, resealed);
    expect(retry.status).toBe(200);
    await retry.arrayBuffer();
    expect(await a.flush()).toEqual([name]);
    expect(await a.readText(path)).toBe(first);
    expect(unseal(first)).toEqual(unseal(resealed));
  });
});
