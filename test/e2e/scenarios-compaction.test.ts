// Two compactors racing on one mesh: the manifest compare-and-swap must let exactly one commit,
// and the loser must abort before deleting anything, so no change file is lost: every change ever
// written is either in the committed snapshot or still listed under changes/.
import { describe, expect, it } from "vitest";
import { useScenarioWorker } from "./support/scenario";
import { Device, unseal, verifyManifest, type CompactResult } from "./support/device";

const { worker, newMesh, device } = useScenarioWorker();

/** Resolves every waiter once `count` parties have arrived. */
function barrier(count: number): () => Promise<void> {
  let arrived = 0;
  let release!: () => void;
  const all = new Promise<void>((resolve) => (release = resolve));
  return async () => {
    arrived += 1;
    if (arrived === count) release();
    await all;
  };
}

/** What a fresh observer sees: the committed snapshot's change set and the listed change files. */
async function observe(mesh: string, root = "/MyApp") {
  const o = new Device({ base: worker().base, mesh, root, deviceId: `observer_${crypto.randomUUID().slice(0, 8)}` });
  const pointer = JSON.parse((await o.readText(o.path("manifest.json")))!) as { currentGeneration: number; file: string };
  const manifest = await verifyManifest((await o.readText(o.path(pointer.file)))!);
  let inSnapshot: string[] = [];
  if (manifest.snapshotPath !== null) {
    const res = await o.getFile(manifest.snapshotPath);
    expect(res.status).toBe(200);
    inSnapshot = (unseal(await res.text()) as { changes: string[] }).changes;
  }
  const listed = (await o.listFiles(o.path("changes"))).map((f) => f.name).filter((n) => n.includes("-chg_"));
  const snapshots = (await o.listFiles(o.path("mainline"))).map((f) => f.path);
  return { pointer, manifest, inSnapshot: new Set(inSnapshot), listed: new Set(listed), snapshots };
}

function expectNothingLost(written: readonly string[], seen: { inSnapshot: Set<string>; listed: Set<string> }) {
  const lost = written.filter((name) => !seen.inSnapshot.has(name) && !seen.listed.has(name));
  expect(lost).toEqual([]);
}

function outcomes(results: CompactResult[]) {
  return {
    winners: results.filter((r) => r.ok),
    losers: results.filter((r): r is Extract<CompactResult, { ok: false }> => !r.ok),
  };
}

describe("two compactors racing from the same generation", () => {
  it("commit exactly one snapshot; the loser gets 409 and deletes nothing", async () => {
    const mesh = newMesh();
    const a = device(mesh, "a");
    const b = device(mesh, "b");
    await a.connect();
    await b.connect();
    const written: string[] = [];
    for (let n = 0; n < 4; n++) {
      written.push(a.write({ [`a${n}`]: "1" }));
      written.push(b.write({ [`b${n}`]: "1" }));
    }
    await a.flush();
    await b.flush();

    const lineUp = barrier(2);
    const results = await Promise.all([a.compact({ beforePublish: lineUp }), b.compact({ beforePublish: lineUp })]);
    const { winners, losers } = outcomes(results);
    expect(winners.length).toBe(1);
    expect(losers.length).toBe(1);
    expect(losers[0]!.status).toBe(409);
    expect(JSON.parse(losers[0]!.body)).toMatchObject({ error: "conflict" });

    const seen = await observe(mesh);
    expect(seen.pointer.currentGeneration).toBe(2);
    expect(seen.manifest.epoch).toBe(1);
    expectNothingLost(written, seen);
    expect(seen.snapshots).toEqual([seen.manifest.snapshotPath]);
  });

  it("lose no change when the two compactors cover different change sets, over repeated rounds", async () => {
    const mesh = newMesh();
    const a = device(mesh, "a");
    const b = device(mesh, "b");
    const c = device(mesh, "c");
    await a.connect();
    await b.connect();
    await c.connect();
    const written: string[] = [];
    let commits = 0;
    for (let round = 0; round < 4; round++) {
      // a and b each know a different subset; c keeps writing while they race.
      written.push(a.write({ [`r${round}a`]: "1" }));
      written.push(b.write({ [`r${round}b`]: "1" }));
      await a.flush();
      await b.flush();
      const lineUp = barrier(2);
      const racing = Promise.all([
        a.compact({ beforePublish: lineUp }),
        b.compact({
          beforePublish: async () => {
            written.push(c.write({ [`r${round}c`]: "1" }));
            await c.flush();
            await lineUp();
          },
        }),
      ]);
      const { winners, losers } = outcomes(await racing);
      expect(winners.length).toBe(1);
      for (const loser of losers) expect(loser.status).toBe(409);
      commits += winners.length;

      const seen = await observe(mesh);
      expect(seen.pointer.currentGeneration).toBe(1 + commits);
      expectNothingLost(written, seen);
    }

    // Everyone still converges on everything that was written.
    for (const d of [a, b, c]) {
      await d.connect();
    }
    for (const d of [a, b, c]) expect(written.filter((n) => !d.merged.has(n))).toEqual([]);
  });

  it("a compactor that publishes after the winner has committed and deleted still loses without harm", async () => {
    const mesh = newMesh();
    const a = device(mesh, "a");
    const b = device(mesh, "b");
    await a.connect();
    await b.connect();
    const written = [a.write({ x: "1" }), b.write({ y: "1" })];
    await a.flush();
    await b.flush();

    let releaseB!: () => void;
    const bMayPublish = new Promise<void>((resolve) => (releaseB = resolve));
    let bReady!: () => void;
    const bPrepared = new Promise<void>((resolve) => (bReady = resolve));
    const late = b.compact({
      beforePublish: async () => {
        bReady();
        await bMayPublish;
      },
    });
    await bPrepared;
    const first = await a.compact();
    expect(first).toMatchObject({ ok: true, generation: 2 });
    releaseB();
    const second = await late;
    expect(second).toMatchObject({ ok: false, stage: "snapshot", status: 409 });

    const seen = await observe(mesh);
    expect(seen.pointer.currentGeneration).toBe(2);
    expectNothingLost(written, seen);
  });

  it("a stale re-bootstrap cannot reset a live mesh", async () => {
    const mesh = newMesh();
    const a = device(mesh, "a");
    await a.connect();
    a.write({ x: "1" });
    await a.flush();
    expect(await a.compact()).toMatchObject({ ok: true, generation: 2 });

    // A confused client that read "no mesh" writes manifest-1 and a generation-1 pointer.
    const confused = device(mesh, "confused");
    const gen1 = await confused.putFile(confused.path("manifest-1.json"), JSON.stringify(await confused.buildManifest(0, null), null, 2));
    expect(gen1.status).toBe(409);
    await gen1.arrayBuffer();
    const pointer = await confused.putFile(confused.path("manifest.json"), JSON.stringify({ currentGeneration: 1, file: "manifest-1.json" }, null, 2));
    expect(pointer.status).toBe(409);
    await pointer.arrayBuffer();

    const seen = await observe(mesh);
    expect(seen.pointer.currentGeneration).toBe(2);
  });
});
