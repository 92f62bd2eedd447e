// `node bench/capacity-model.mjs [results.json]`: the modelled half of README "Capacity model",
// from the figures bench/index-capacity.mjs measured (its --json output) and the assumptions
// below, so the README table can be recomputed when a figure or an assumption changes.
// The model: a D1 database runs one query at a time (Cloudflare's D1 limits page), so one shard
// serves at most 1000 / S write statements a second, S the service time of one statement.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

/** Assumptions: every one is a model input, none is measured here. */
export const ASSUMPTIONS = {
  /** Write service time in production: the D1 limits page says writes "can take several milliseconds" (durable in several locations). */
  productionWriteMs: 5,
  /** Busy fraction a shard is planned to: above it the queue grows and D1 answers "overloaded". */
  utilization: 0.7,
  /** Index write statements per steady flush: 3 before issue 12's coalescing, 1 after. */
  writesPerFlush: [3, 1],
  /** Devices of one mesh writing at once, and the seconds between a device's flushes. */
  activeDevicesPerMesh: 4,
  flushIntervalS: 10,
  /** Index rows a mesh holds: ~1,000 change files in the listing window, tombstones kept for the retention, snapshots, devices, 48 hourly counters. */
  rowsPerMesh: 2_000,
  /** D1's database size limit (Workers Paid) and the share of it a shard is planned to fill. */
  databaseBytes: 10e9,
  fill: 0.8,
  shards: [1, 4, 16],
};

export function model(measured, a = ASSUMPTIONS) {
  const localWriteMs = measured.statements.upsert.median;
  const bytesPerRow = measured.bytesPerRow.d1SizeAfterPerRow;
  const perShard = (ms) => (a.utilization * 1000) / ms;
  const meshBytes = a.rowsPerMesh * bytesPerRow;
  const meshFlushesPerS = a.activeDevicesPerMesh / a.flushIntervalS;
  return a.shards.map((n) => {
    const flushes = (ms, w) => (n * perShard(ms)) / w;
    return {
      shards: n,
      localFlushes: a.writesPerFlush.map((w) => flushes(localWriteMs, w)),
      productionFlushes: a.writesPerFlush.map((w) => flushes(a.productionWriteMs, w)),
      /** Active meshes the write rate carries at one write per flush, production service time. */
      activeMeshes: flushes(a.productionWriteMs, 1) / meshFlushesPerS,
      devicesEvery10s: flushes(a.productionWriteMs, 1) * a.flushIntervalS,
      /** Meshes the storage holds. */
      storedMeshes: (n * a.databaseBytes * a.fill) / meshBytes,
      localWriteMs,
      bytesPerRow,
    };
  });
}

const round = (v) => (v >= 100_000 ? `${Math.round(v / 1000).toLocaleString("en")}k` : Math.round(v).toLocaleString("en"));

export function renderModel(rows) {
  const out = [
    "| N shards | flushes/s, local S, 3 / 1 writes | flushes/s, S = 5 ms, 3 / 1 writes | devices flushing every 10 s (1 write, 5 ms) | active meshes (4 devices each) | meshes by storage |",
    "| --- | --- | --- | --- | --- | --- |",
  ];
  for (const r of rows) {
    out.push(
      `| ${r.shards} | ${round(r.localFlushes[0])} / ${round(r.localFlushes[1])} | ${round(r.productionFlushes[0])} / ${round(r.productionFlushes[1])} | ${round(r.devicesEvery10s)} | ${round(r.activeMeshes)} | ${round(r.storedMeshes)} |`,
    );
  }
  return out.join("\n");
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = process.argv[2] ?? path.join(here, "results", "index-capacity.json");
  const measured = JSON.parse(readFileSync(file, "utf8"));
  const rows = model(measured);
  console.log(`measured (${measured.date}): S = ${rows[0].localWriteMs.toFixed(2)} ms per change-file upsert, ${rows[0].bytesPerRow.toFixed(0)} bytes per objects row`);
  console.log(`assumed: ${JSON.stringify(ASSUMPTIONS)}\n`);
  console.log(renderModel(rows));
}
