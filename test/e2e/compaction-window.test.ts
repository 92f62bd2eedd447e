// Compaction meets connected devices (issue 15), against the real worker with the simulator
// behaving as the real client does (CLIENT.md "Compaction and connected devices"): a connected
// device's pull never loads a newer snapshot, and compaction snapshots the compactor's own rows.
// The listing window (DELETED_CHANGE_LISTING_MS) keeps compacted change files listed so those
// devices merge them first; a second worker with the window at 0 shows the loss it prevents.
import { describe, expect, it } from "vitest";
import type { Device } from "./support/device";
import { useScenarioWorker, type Scenario } from "./support/scenario";

const windowed = useScenarioWorker();

/** Writes `count` rows as `count` batches (one change file each) and flushes them. */
async function writeRows(d: Device, prefix: string, count: number): Promise<string[]> {
  const keys: string[] = [];
  for (let n = 0; n < count; n++) {
    const key = `${prefix}${n}`;
    d.write({ [key]: `${prefix}-value-${n}` });
    keys.push(key);
  }
  await d.flush();
  return keys;
}

const missing = (d: Device, keys: readonly string[]) => keys.filter((key) => !d.rows.has(key));

/**
 * B completes its compaction, then A compacts without having pulled B's rows. Returns the keys of
 * B's rows a fresh device misses afterwards.
 */
async function compactBehind(scenario: Scenario): Promise<{ bRows: string[]; aRows: string[]; fresh: Device }> {
  const mesh = scenario.newMesh();
  const a = scenario.device(mesh, "a");
  const b = scenario.device(mesh, "b");
  await a.connect();
  await b.connect();
  const aRows = await writeRows(a, "a", 3);
  await b.pull();
  const bRows = await writeRows(b, "b", 5);
  expect(await b.compact()).toMatchObject({ ok: true, generation: 2, epoch: 1 });
  expect(await a.compact()).toMatchObject({ ok: true, generation: 3, epoch: 2 });
  const fresh = scenario.device(mesh, "fresh");
  await fresh.connect();
  return { bRows, aRows, fresh };
}

describe("with the listing window (defaults)", () => {
  it("a connected device holds every row of another device's compaction after one pull", async () => {
    const mesh = windowed.newMesh();
    const a = windowed.device(mesh, "a");
    const b = windowed.device(mesh, "b");
    await a.connect();
    await b.connect();
    const rows = await writeRows(b, "b", 5);
    const compacted = await b.compact();
    expect(compacted).toMatchObject({ ok: true, generation: 2, epoch: 1 });
    expect(compacted.ok && compacted.deleted.length).toBe(5);

    const pulled = await a.pull();
    expect(pulled.merged.length).toBe(5);
    expect(missing(a, rows)).toEqual([]);
    // The pull merged change files; it did not load the snapshot.
    expect(a.getsByPath.get(compacted.ok ? compacted.snapshotPath : "")).toBeUndefined();
  });

  it("a compactor that never pulled the first compaction's rows still keeps them", async () => {
    const { bRows, aRows, fresh } = await compactBehind(windowed);
    expect(missing(fresh, [...aRows, ...bRows])).toEqual([]);
  });

  it("racing compactors lose no rows", async () => {
    const mesh = windowed.newMesh();
    const a = windowed.device(mesh, "a");
    const b = windowed.device(mesh, "b");
    await a.connect();
    await b.connect();
    const written: string[] = [];
    const lostByRound: Array<{ round: number; delayMs: number; lost: string[] }> = [];
    let commits = 0;
    const ROUNDS = 20;
    const deadline = Date.now() + 60_000;
    for (let round = 0; round < ROUNDS && Date.now() < deadline; round++) {
      // Both hold A's rows; B also holds rows A never pulled.
      written.push(...(await writeRows(a, `r${round}a`, 2)));
      await b.pull();
      written.push(...(await writeRows(b, `r${round}b`, 2)));

      // 0-200 ms, spread over the rounds (a stagger, not a timing assertion).
      const delayMs = Math.round((round * 200) / (ROUNDS - 1));
      const first = b.compact();
      await new Promise((r) => setTimeout(r, delayMs));
      const second = a.compact();
      const results = await Promise.all([first, second]);
      for (const result of results) {
        if (!result.ok) expect(result.status).toBe(409);
      }
      const won = results.filter((r) => r.ok).length;
      expect(won).toBeGreaterThanOrEqual(1);
      commits += won;

      const fresh = windowed.device(mesh, `fresh${round}`);
      await fresh.connect();
      const lost = missing(fresh, written);
      if (lost.length > 0) lostByRound.push({ round, delayMs, lost });
    }
    expect(lostByRound).toEqual([]);
    expect(written.length).toBe(ROUNDS * 4);
    expect(commits).toBeGreaterThanOrEqual(ROUNDS);
  });

  it("a fresh device connecting during the window rehydrates from the snapshot and GETs none of the covered change files", async () => {
    const mesh = windowed.newMesh();
    const a = windowed.device(mesh, "a");
    await a.connect();
    const rows = await writeRows(a, "a", 5);
    const compacted = await a.compact();
    if (!compacted.ok) throw new Error(`compaction failed: ${compacted.status} ${compacted.body}`);
    expect(compacted.covered.length).toBe(5);

    const fresh = windowed.device(mesh, "fresh");
    await fresh.connect();
    expect(missing(fresh, rows)).toEqual([]);
    expect(fresh.getsByPath.get(compacted.snapshotPath)).toBe(1);
    // The covered change files are still listed (the window is open), and the device skipped them.
    const listed = (await fresh.listFiles(fresh.path("changes"))).map((f) => f.name);
    for (const name of compacted.covered) expect(listed).toContain(name);
    const fetched = compacted.covered.filter((name) => fresh.getsByPath.has(fresh.path(`changes/${name}`)));
    expect(fetched).toEqual([]);
  });
});

describe("without the window (DELETED_CHANGE_LISTING_MS=0)", () => {
  const unwindowed = useScenarioWorker({ vars: { DELETED_CHANGE_LISTING_MS: "0", DELETED_CHANGE_GRACE_MS: "1000" } });

  it("without the window the same race loses rows", async () => {
    const { bRows, aRows, fresh } = await compactBehind(unwindowed);
    // A committed generation 3 from its own rows and deleted B's snapshot: B's rows are gone.
    expect(missing(fresh, aRows)).toEqual([]);
    expect(missing(fresh, bRows)).toEqual(bRows);
  });
});
