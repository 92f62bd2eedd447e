// `npm run bench:index`: the service time of each index statement on the write and read paths,
// measured inside workerd against local D1 (SQLite on this machine) — the measured inputs of the
// README's capacity model. Local D1 has no network hop and no replication, so production times are
// higher; the README says which figures are measured and which are modelled.
// Runs only in the "bench-index" vitest project (MESHBOX_BENCH_INDEX=1), never in `npm test`.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import * as index from "../../worker/objects/object-index";
import { hourlyWriteStatement, touchWriteStatement } from "../../worker/objects/usage";
import { indexDbFor } from "../../worker/shards/mesh-index-db";
import { clearPlacementCache, place, readPlacement } from "../../worker/shards/shard-directory";
import type { ObjectEntry } from "../../worker/objects/object-types";

const SAMPLES = 400;
const FOLDER_FILES = 1_000;

function changeEntry(i: number): ObjectEntry {
  const name = `${String(1_700_000_000_000 + i).padStart(15, "0")}-0000-devA-chg_${crypto.randomUUID()}.json`;
  return { path: `/App/changes/${name}`, size: 900, etag: `"${crypto.randomUUID()}"`, modifiedAt: Date.now(), cls: "change", location: "r2", version: 0 };
}

interface Figure {
  statement: string;
  path: "write" | "read";
  medianMs: number;
  p95Ms: number;
}

async function time(statement: string, path: "write" | "read", run: (i: number) => Promise<unknown>): Promise<Figure> {
  for (let i = 0; i < 20; i++) await run(-1 - i); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const started = performance.now();
    await run(i);
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  const at = (q: number) => Math.round(samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]! * 1000) / 1000;
  return { statement, path, medianMs: at(0.5), p95Ms: at(0.95) };
}

describe("index statement service times (local D1)", () => {
  it("measures every index statement of the write and read paths", async () => {
    const figures: Figure[] = [];
    const mesh = `bench_${crypto.randomUUID()}`;
    const db = env.DB;
    const seed = Array.from({ length: FOLDER_FILES }, (_, i) => changeEntry(i));
    await index.fillFolder(db, mesh, "/App", seed, Date.now());

    figures.push(
      await time("flush: change upsert + hourly counter (1 batch)", "write", (i) =>
        db.batch([index.upsertUnlessDeletedStatement(db, mesh, changeEntry(10_000 + i)), hourlyWriteStatement(db, mesh, Date.now(), 900)]),
      ),
    );
    figures.push(await time("last-write touch (mesh_usage)", "write", () => touchWriteStatement(db, mesh, Date.now()).run()));
    figures.push(
      await time("delete: tombstone one path + touch + hourly (1 batch)", "write", (i) =>
        db.batch([...index.tombstoneStatements(db, mesh, [seed[Math.abs(i) % FOLDER_FILES]!.path], Date.now()), touchWriteStatement(db, mesh, Date.now()), hourlyWriteStatement(db, mesh, Date.now())]),
      ),
    );
    const window = index.listingWindow(Date.now(), 600_000);
    figures.push(
      await time(`list-files: indexed check + ${FOLDER_FILES}-file folder (1 batch)`, "read", () =>
        db.batch([index.isIndexedStatement(db, mesh, "/App/changes"), index.listChildrenStatement(db, mesh, "/App/changes", window)]),
      ),
    );
    figures.push(
      await time("GET check: row + indexed check (1 batch)", "read", (i) =>
        db.batch([index.readRowStatement(db, mesh, seed[Math.abs(i) % FOLDER_FILES]!.path), index.isIndexedStatement(db, mesh, "/App/changes")]),
      ),
    );

    // Sharded: the same flush through the mesh's handle (fence check in the batch), and a directory lookup.
    const sharded = `bench_${crypto.randomUUID()}`;
    await place(env, sharded);
    const handle = indexDbFor(env, sharded);
    figures.push(
      await time("flush via shard handle (+ fence check, cached placement)", "write", (i) =>
        handle.batch([index.upsertUnlessDeletedStatement(handle, sharded, changeEntry(20_000 + i)), hourlyWriteStatement(handle, sharded, Date.now(), 900)]),
      ),
    );
    figures.push(
      await time("directory lookup (uncached placement)", "read", async () => {
        clearPlacementCache();
        return readPlacement(env, sharded);
      }),
    );

    console.log(`\nindex statement service times, local D1, ${SAMPLES} samples each\n`);
    console.log(["| statement | path | median ms | p95 ms |", "| --- | --- | --- | --- |", ...figures.map((f) => `| ${f.statement} | ${f.path} | ${f.medianMs} | ${f.p95Ms} |`)].join("\n"));
    expect(figures.every((f) => Number.isFinite(f.medianMs) && f.medianMs > 0)).toBe(true);
  }, 300_000);
});
