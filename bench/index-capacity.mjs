// `node bench/index-capacity.mjs`: the measured half of README "Capacity model". Starts the
// capacity Worker (bench/index-capacity: meshbox's own index statements against local D1 with the
// real migrations) under `wrangler dev`, and prints
//   - the service time of each index statement of the write and read paths, timed inside the
//     Worker (median and p95 over samples; wrangler's HTTP proxy and this client are excluded),
//   - sequential change-file upserts per second on one database, with four loops on one database,
//     and with one loop on each of four databases in parallel,
//   - the bytes one objects row takes in the local SQLite file (10,000 rows inserted).
//   node bench/index-capacity.mjs [--quick] [--json [file]]
// Local figures: workerd's SQLite on this machine, no network, no replication. They are the
// measured input of the model, not Cloudflare's production service times.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { median, percentile, renderTable } from "./stats.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const CONFIG = "bench/index-capacity/wrangler.toml";
const INDEX_BINDINGS = ["INDEX_DB_0", "INDEX_DB_1", "INDEX_DB_2", "INDEX_DB_3"];
/** In timing order: the write path, then the read path, then the directory. */
const STATEMENTS = ["upsert", "hourly", "upsert+hourly batch", "tombstone10", "read row", "list-files 100", "list-files 1000", "list-folders", "directory"];
const FILL_ROWS = 10_000;

const log = (line) => process.stderr.write(`[capacity] ${line}\n`);

function parseArgs(argv) {
  const args = { quick: false, json: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--quick") args.quick = true;
    else if (a === "--json") {
      const next = argv[i + 1];
      args.json = next !== undefined && !next.startsWith("--") ? argv[++i] : path.join(here, "results", "index-capacity.json");
    } else throw new Error(`unknown argument ${a}; use --quick, --json [file]`);
  }
  return args;
}

async function post(origin, route) {
  const res = await fetch(`${origin}${route}`, { method: "POST" });
  const body = await res.json();
  if (!res.ok) throw new Error(`${route} answered ${res.status}: ${JSON.stringify(body)}`);
  return body;
}

/** Bytes of the local D1 SQLite files (main file and WAL) under a persist directory. */
function d1Bytes(persistTo) {
  const dir = path.join(persistTo, "v3", "d1", "miniflare-D1DatabaseObject");
  let bytes = 0;
  for (const name of readdirSync(dir)) if (name.endsWith(".sqlite") || name.endsWith(".sqlite-wal")) bytes += statSync(path.join(dir, name)).size;
  return bytes;
}

/** Samples of one statement: `rounds` requests of `samples` samples of `group` runs each. */
async function sample(origin, statement, { rounds, samples, group }) {
  const all = [];
  for (let r = 0; r < rounds; r++) {
    const body = await post(origin, `/capacity/time?statement=${encodeURIComponent(statement)}&samples=${samples}&group=${group}`);
    all.push(...body.samples);
  }
  return all;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const { startWorker } = await import("../test/e2e/support/worker-process.ts");
  const persistTo = mkdtempSync(path.join(os.tmpdir(), "meshbox-capacity-"));
  const env = { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" };
  // startWorker migrates DB; the four index shards get the same migrations here.
  for (const binding of INDEX_BINDINGS) {
    const run = spawnSync(path.join(root, "node_modules", ".bin", "wrangler"), ["d1", "migrations", "apply", binding, "--local", "--persist-to", persistTo, "--config", CONFIG], { cwd: root, env, encoding: "utf8" });
    if (run.status !== 0) throw new Error(`migrations for ${binding} failed:\n${run.stdout}\n${run.stderr}`);
  }
  log("starting wrangler dev for the capacity Worker ...");
  const worker = await startWorker({ config: CONFIG, readyPath: "/capacity/ready", persistTo, frozenSources: true });
  const started = Date.now();
  const rows = [];
  const out = { date: new Date().toISOString(), quick: args.quick, machine: null, statements: {}, throughput: {}, bytesPerRow: null };
  try {
    const o = worker.origin;
    log(`setup: ${JSON.stringify(await post(o, "/capacity/setup"))}`);

    // Bytes per row first, on the otherwise untouched INDEX_DB_3 (the others are already filled).
    const before = d1Bytes(persistTo);
    const filled = await post(o, `/capacity/fill?n=${FILL_ROWS}`);
    const after = d1Bytes(persistTo);
    out.bytesPerRow = { rows: filled.rows, fileBytesPerRow: (after - before) / filled.rows, d1SizeBeforeBytes: filled.sizeBefore, d1SizeAfterBytes: filled.sizeAfter, d1SizeAfterPerRow: (filled.sizeAfter - filled.sizeBefore) / filled.rows };
    log(`bytes per objects row: ${out.bytesPerRow.fileBytesPerRow.toFixed(0)} (file growth), ${out.bytesPerRow.d1SizeAfterPerRow.toFixed(0)} (D1 size_after / rows)`);

    // Service times. Single-run samples show the spread; ten-run groups the mean where the clock is coarse.
    const plan = args.quick ? { rounds: 2, samples: 100 } : { rounds: 5, samples: 200 };
    for (const statement of STATEMENTS) {
      const single = await sample(o, statement, { ...plan, group: 1 });
      const grouped = await sample(o, statement, { rounds: plan.rounds, samples: Math.max(10, plan.samples / 10), group: 10 });
      const distinct = new Set(single.map((v) => v.toFixed(3))).size;
      out.statements[statement] = { single: { n: single.length, median: median(single), p95: percentile(single, 95), distinct }, grouped10: { n: grouped.length, median: median(grouped), p95: percentile(grouped, 95) } };
      rows.push({ name: statement, unit: "ms", runs: single.length, median: median(single), p95: percentile(single, 95), note: `mean of 10 in a row: median ${median(grouped).toFixed(3)}, p95 ${percentile(grouped, 95).toFixed(3)} ms; ${distinct} distinct values` });
      log(`${statement} done`);
    }

    // Throughput: one database, one loop; one database, four loops; four databases, one loop each.
    const ms = args.quick ? 2_000 : 5_000;
    for (const [name, dbs, loops] of [["1 database, 1 loop", 1, 1], ["1 database, 4 loops", 1, 4], ["4 databases, 1 loop each", 4, 1]]) {
      const runs = [];
      for (let r = 0; r < (args.quick ? 1 : 3); r++) runs.push(await post(o, `/capacity/throughput?dbs=${dbs}&loops=${loops}&ms=${ms}`));
      const rates = runs.map((t) => t.perDb.reduce((a, b) => a + b, 0) / (t.elapsedMs / 1000));
      out.throughput[name] = { runs, statementsPerSecond: median(rates), perDbPerSecond: runs.map((t) => t.perDb.map((n) => n / (t.elapsedMs / 1000))) };
      rows.push({ name: `upserts/s, ${name}`, unit: "stmt/s", runs: runs.length, median: median(rates), p95: null, note: `per database: ${out.throughput[name].perDbPerSecond.at(-1).map((v) => v.toFixed(0)).join(", ")}` });
      log(`throughput ${name}: ${median(rates).toFixed(0)} statements/s`);
    }
  } finally {
    await worker.stop();
    rmSync(persistTo, { recursive: true, force: true });
  }

  out.machine = { nproc: os.availableParallelism(), cpu: os.cpus()[0]?.model ?? "unknown", memoryGiB: Number((os.totalmem() / 1024 ** 3).toFixed(1)), platform: `${os.type()} ${os.release()} ${os.arch()}`, node: process.version };
  console.log(`meshbox index capacity (${args.quick ? "quick" : "full"}), ${out.date}: ${out.machine.nproc} CPUs (${out.machine.cpu}), ${out.machine.memoryGiB} GiB RAM, ${out.machine.platform}`);
  console.log("service time per statement, timed inside the Worker around await (local D1, wrangler dev); throughput on INDEX_DB_0..3");
  console.log(renderTable(rows));
  console.log(`\nbytes per objects row (${out.bytesPerRow.rows} change-file rows): ${out.bytesPerRow.fileBytesPerRow.toFixed(0)} from the SQLite file growth, ${out.bytesPerRow.d1SizeAfterPerRow.toFixed(0)} from D1's size_after`);
  console.log(`total ${((Date.now() - started) / 1000).toFixed(0)} s`);
  if (args.json) {
    mkdirSync(path.dirname(path.resolve(args.json)), { recursive: true });
    writeFileSync(path.resolve(args.json), `${JSON.stringify(out, null, 2)}\n`);
    console.log(`wrote ${path.resolve(args.json)}`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
