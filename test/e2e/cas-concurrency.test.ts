// Many concurrent compactors on one mesh against the real worker (wrangler dev). Each round, 16
// simulated devices read the pointer and compact as CLIENT.md describes (snapshot PUT ->
// manifest-<n+1> PUT -> pointer PUT, aborting at the first non-2xx), two of them with a stale
// view one generation behind. Every request and outcome is recorded, then the history is checked:
// each generation committed exactly once, the pointer never moved backwards, and nobody got a 2xx
// for a candidate whose stored bytes are not theirs.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWorker, type RunningWorker } from "./support/worker-process";

let worker: RunningWorker;
beforeAll(async () => {
  worker = await startWorker();
});
afterAll(async () => {
  await worker?.stop();
});

const ROUNDS = 20;
const COMPACTORS = 16;
const STALE_PER_ROUND = 2;
const ROOT = "/App";

interface Attempt {
  round: number;
  compactor: number;
  method: "PUT" | "GET";
  path: string;
  body: string;
  status: number;
  startedAt: number;
  endedAt: number;
}

const history: Attempt[] = [];

async function request(mesh: string, round: number, compactor: number, method: "PUT" | "GET", path: string, body = ""): Promise<Attempt> {
  const startedAt = performance.now();
  const res = await fetch(`${worker.base}/io/${mesh}/file?path=${encodeURIComponent(path)}`, {
    method,
    body: method === "PUT" ? body : undefined,
  });
  const text = await res.text();
  const attempt: Attempt = {
    round,
    compactor,
    method,
    path,
    body: method === "PUT" ? body : text,
    status: res.status,
    startedAt,
    endedAt: performance.now(),
  };
  history.push(attempt);
  return attempt;
}

const ok = (status: number) => status >= 200 && status < 300;
const pointerBody = (n: number) => JSON.stringify({ currentGeneration: n, file: `manifest-${n}.json` }, null, 2);
// Four server ids, so several snapshot names (and so several owners) race for the same generation.
// Stale compactors use their own server id, so their snapshot is new and they reach the generation step.
const snapshotPath = (epoch: number, compactor: number, stale: boolean) =>
  `${ROOT}/mainline/snapshot-${epoch}-${stale ? `server_stale_${compactor}` : `server_relay_${compactor % 4}`}.json`;

/** One compactor's attempt, as the real client does it: abort at the first non-2xx. */
async function compact(mesh: string, round: number, compactor: number, seenGeneration: number, stale: boolean): Promise<void> {
  const next = seenGeneration + 1;
  const snap = snapshotPath(next, compactor, stale);
  const snapBody = `snapshot e${next} by c${compactor} r${round} ${crypto.randomUUID()} `.repeat(50);
  if (!ok((await request(mesh, round, compactor, "PUT", snap, snapBody)).status)) return;
  const manifest = JSON.stringify({ version: 3, meshId: mesh, epoch: next, snapshotPath: snap, writtenBy: `c${compactor}-r${round}` });
  if (!ok((await request(mesh, round, compactor, "PUT", `${ROOT}/manifest-${next}.json`, manifest)).status)) return;
  await request(mesh, round, compactor, "PUT", `${ROOT}/manifest.json`, pointerBody(next));
}

async function readGeneration(mesh: string, round: number): Promise<number> {
  const read = await request(mesh, round, -1, "GET", `${ROOT}/manifest.json`);
  expect(read.status).toBe(200);
  return (JSON.parse(read.body) as { currentGeneration: number }).currentGeneration;
}

describe("PUT manifest.json under concurrent compactors", () => {
  it("commits each generation exactly once, never moves backwards, and gives no loser a 2xx", async () => {
    const mesh = `cas_${crypto.randomUUID()}`;
    expect((await request(mesh, 0, 0, "PUT", `${ROOT}/manifest-1.json`, JSON.stringify({ epoch: 1, snapshotPath: null }))).status).toBe(201);
    expect((await request(mesh, 0, 0, "PUT", `${ROOT}/manifest.json`, pointerBody(1))).status).toBe(201);

    const observed: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const current = await readGeneration(mesh, round);
      let observing = true;
      // An observer polls the pointer throughout the round; it must never see it go backwards.
      const observer = (async () => {
        for (let i = 0; i < 500 && observing; i++) observed.push(await readGeneration(mesh, round));
      })();
      await Promise.all(
        Array.from({ length: COMPACTORS }, (_, c) => {
          const stale = c < STALE_PER_ROUND && current > 1;
          return compact(mesh, round, c, stale ? current - 1 : current, stale);
        }),
      );
      observing = false;
      await observer;
    }

    // Each generation 2..ROUNDS+1 was committed by exactly one pointer PUT (201/204; 200 would be a
    // repeat of identical bytes).
    const commits = history.filter((a) => a.method === "PUT" && a.path === `${ROOT}/manifest.json` && (a.status === 201 || a.status === 204));
    const committedGenerations = commits.map((a) => (JSON.parse(a.body) as { currentGeneration: number }).currentGeneration);
    expect(committedGenerations).toEqual([1, ...Array.from({ length: ROUNDS }, (_, i) => i + 2)]);
    expect(await readGeneration(mesh, ROUNDS + 1)).toBe(ROUNDS + 1);

    // The pointer never went backwards, as seen by the observer in real time.
    for (let i = 1; i < observed.length; i++) expect(observed[i]!).toBeGreaterThanOrEqual(observed[i - 1]!);

    // Every 2xx for a candidate (snapshot or generation) went to the writer whose bytes are stored.
    const puts = history.filter((a) => a.method === "PUT" && a.path !== `${ROOT}/manifest.json`);
    const stored = new Map<string, string>();
    for (const path of new Set(puts.map((a) => a.path))) {
      const read = await request(mesh, ROUNDS + 1, -1, "GET", path);
      if (read.status === 200) stored.set(path, read.body);
    }
    const wrongWinners = puts.filter((a) => ok(a.status) && stored.get(a.path) !== a.body);
    expect(wrongWinners).toEqual([]);
    // Exactly one writer got 201 per candidate name; every other different-bytes writer got 409.
    for (const path of new Set(puts.map((a) => a.path))) {
      const created = puts.filter((a) => a.path === path && a.status === 201);
      expect(created.length).toBeLessThanOrEqual(1);
    }
    expect(puts.filter((a) => !ok(a.status) && a.status !== 409)).toEqual([]);

    // Each committed generation names a snapshot written by the same compactor that wrote it.
    for (let n = 2; n <= ROUNDS + 1; n++) {
      const manifest = JSON.parse(stored.get(`${ROOT}/manifest-${n}.json`)!) as { snapshotPath: string; writtenBy: string };
      const [who, round] = manifest.writtenBy.split("-");
      expect(stored.get(manifest.snapshotPath)).toContain(`by ${who} ${round}`);
    }

    // Stale compactors (a view one generation behind) never got a 2xx for a generation or pointer
    // (a snapshot name nobody used yet is theirs to create; it is never committed).
    const stale = history.filter(
      (a) => a.method === "PUT" && a.round > 1 && a.compactor >= 0 && a.compactor < STALE_PER_ROUND && !a.path.includes("/mainline/"),
    );
    expect(stale.length).toBeGreaterThan(0);
    expect(stale.filter((a) => ok(a.status))).toEqual([]);

    const durations = history.filter((a) => a.method === "PUT").map((a) => a.endedAt - a.startedAt).sort((a, b) => a - b);
    console.log(
      JSON.stringify({
        measure: "CAS concurrency",
        rounds: ROUNDS,
        compactorsPerRound: COMPACTORS,
        requests: history.length,
        conflicts: history.filter((a) => a.status === 409).length,
        putP50ms: Math.round(durations[Math.floor(durations.length / 2)]!),
        putP95ms: Math.round(durations[Math.floor(durations.length * 0.95)]!),
      }),
    );
  });
});
