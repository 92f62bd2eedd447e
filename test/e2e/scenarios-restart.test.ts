// Durability across a full restart of the worker process (workerd with the same local state
// directory): everything acknowledged before the restart is there after it, control objects
// (manifest, head, device records) included, and devices carry on where they left off.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startWorker, type RunningWorker } from "./support/worker-process";
import { Device } from "./support/device";

const stateDir = mkdtempSync(path.join(tmpdir(), "meshbox-restart-"));
let running: RunningWorker | null = null;
afterAll(async () => {
  await running?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

describe("a worker restart with the same state directory", () => {
  it("keeps every acknowledged change, the committed manifest and head.json, and devices continue", async () => {
    running = await startWorker({ frozenSources: true, persistTo: stateDir });
    const mesh = `mesh_${crypto.randomUUID()}`;
    const a = new Device({ base: running.base, mesh, deviceId: "a_restart" });
    const b = new Device({ base: running.base, mesh, deviceId: "b_restart" });
    await a.connect();
    await b.connect();
    const before: string[] = [];
    for (let n = 0; n < 4; n++) {
      before.push(a.write({ [`a${n}`]: "1" }));
      before.push(b.write({ [`b${n}`]: "1" }));
    }
    await a.flush();
    await b.flush();
    expect(await a.compact()).toMatchObject({ ok: true, generation: 2 });
    const late = b.write({ late: "1" });
    await b.flush();
    const headBefore = await a.readText(a.path("changes/head.json"));
    const pointerBefore = await a.readText(a.path("manifest.json"));
    await running.stop();
    running = null;

    running = await startWorker({ frozenSources: true, persistTo: stateDir });
    const c = new Device({ base: running.base, mesh, deviceId: "c_restart" });
    await c.connect();
    expect(c.generation).toBe(2);
    expect(c.epoch).toBe(1);
    expect([...before, late].filter((n) => !c.merged.has(n))).toEqual([]);
    expect(await c.readText(c.path("changes/head.json"))).toBe(headBefore);
    expect(await c.readText(c.path("manifest.json"))).toBe(pointerBefore);
    const devices = (await c.listFiles(c.path("devices"))).map((f) => f.name).sort();
    expect(devices).toEqual(["a_restart.json", "b_restart.json", "c_restart.json"]);

    // The devices from before the restart carry on against the new process.
    const a2 = new Device({ base: running.base, mesh, deviceId: "a_restart" });
    await a2.connect();
    const after = a2.write({ after: "1" });
    await a2.flush();
    await c.pull();
    expect(c.merged.has(after)).toBe(true);
    // A re-bootstrap after the restart still cannot reset the mesh.
    const stale = await c.putFile(c.path("manifest.json"), JSON.stringify({ currentGeneration: 1, file: "manifest-1.json" }, null, 2));
    expect(stale.status).toBe(409);
    await stale.arrayBuffer();
  });
});
