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
import { place } from "../../worker/shards/shard-directory";
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
  /** Total time / samples: workerd's clock moves in whole ms (and only across I/O), so one sample is too coarse. */
  meanMs: number;
  p95Ms: number;
  /** D1's own meta.duration summed over the batch: the time the database spends, which is what serializes. */
  dbMs: number;
}

function dbDuration(result: unknown): number {
  const results = Array.isArray(result) ? result : [result];
  let sum = 0;
  for (const r of results) {
    const d = (r as { meta?: { duration?: number } } | null)?.meta?.duration;
    if (typeof d === "number") sum += d;
  }
  return sum;
}

async function time(statement: string, path: "write" | "read", run: (i: number) => Promise<unknown>): Promise<Figure> {
  for (let i = 0; i < 20; i++) await run(-1 - i); // warm-up
  const samples: number[] = [];
  let db = 0;
  const began = performance.now();
  for (let i = 0; i < SAMPLES; i++) {
    const started = performance.now();
    db += dbDuration(await run(i));
    samples.push(performance.now() - started);
  }
  const meanMs = Math.round(((performance.now() - began) / SAMPLES) * 100) / 100;
  samples.sort((a, b) => a - b);
  const p95Ms = samples[Math.min(samples.length - 1, Math.floor(0.95 * samples.length))]!;
  return { statement, path, meanMs, p95Ms, dbMs: Math.round((db / SAMPLES) * 1000) / 1000 };
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
      await time("directory lookup (uncached placement)", "read", () =>
        env.DB.prepare(`SELECT mesh, shard, epoch, moving_to, placed_at FROM index_directory WHERE mesh = ?1`).bind(sharded).all(),
      ),
    );

    // Bytes per index row: the shard's size before and after 10,000 change-file rows of one mesh.
    // (D1 refuses PRAGMA page_count; every result's meta.size_after is the database's size in bytes.)
    const sizeOf = async (target: D1Database) => (await target.prepare(`SELECT 1`).run()).meta.size_after;
    const empty = env.INDEX_DB_1!;
    const before = await sizeOf(empty);
    const sized = `bench_${crypto.randomUUID()}`;
    const rows = Array.from({ length: 10_000 }, (_, i) => changeEntry(i));
    await index.fillFolder(empty, sized, "/App", rows, Date.now());
    const bytesPerRow = Math.round((await sizeOf(empty)) - before) / rows.length;

    console.log(`\nindex rows take ${Math.round(bytesPerRow)} bytes each (objects row + secondary index, change-file names)`);
    console.log(`\nindex statement service times, local D1, ${SAMPLES} samples each\n`);
    console.log(["| statement | path | round trip, mean ms | p95 ms (1 ms clock) | D1 time (meta.duration), mean ms |", "| --- | --- | --- | --- | --- |", ...figures.map((f) => `| ${f.statement} | ${f.path} | ${f.meanMs} | ${f.p95Ms} | ${f.dbMs} |`)].join("\n"));
    expect(figures.every((f) => Number.isFinite(f.meanMs) && f.meanMs > 0)).toBe(true);
  }, 300_000);
});
