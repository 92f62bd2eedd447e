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
import { median, percentile } from "./stats.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const CONFIG = "bench/index-capacity/wrangler.toml";
/** startWorker migrates DB; these get the same migrations here. */
const OTHER_BINDINGS = ["INDEX_DB_0", "INDEX_DB_1", "INDEX_DB_2", "INDEX_DB_3", "UNFENCED_DB"];
/** In timing order: the write path, then the read path, then the directory. */
const STATEMENTS = ["upsert", "upsert, no fence", "hourly", "upsert+hourly batch", "tombstone10", "read row", "list-files 100", "list-files 1000", "list-folders", "directory"];
const FILL_ROWS = 10_000;
/** Runs per timed sample: the Worker's clock ticks in whole milliseconds. */
const GROUP = 20;
/** Which path each statement serves, for the table. */
const PATH_OF = { upsert: "write", "upsert, no fence": "write (fence dropped)", hourly: "write", "upsert+hourly batch": "write", tombstone10: "write (delete)", "read row": "read", "list-files 100": "read", "list-files 1000": "read", "list-folders": "read", directory: "both (DB)" };

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

/** A plain fixed-width table, numbers right-aligned. */
function table(header, body) {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const numeric = (i) => body.every((row) => /^[\d.,\s-]+( ms)?$/.test(row[i]));
  const line = (cells) => cells.map((c, i) => (numeric(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const { startWorker } = await import("../test/e2e/support/worker-process.ts");
  const persistTo = mkdtempSync(path.join(os.tmpdir(), "meshbox-capacity-"));
  const env = { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" };
  for (const binding of OTHER_BINDINGS) {
    const run = spawnSync(path.join(root, "node_modules", ".bin", "wrangler"), ["d1", "migrations", "apply", binding, "--local", "--persist-to", persistTo, "--config", CONFIG], { cwd: root, env, encoding: "utf8" });
    if (run.status !== 0) throw new Error(`migrations for ${binding} failed:\n${run.stdout}\n${run.stderr}`);
  }
  log("starting wrangler dev for the capacity Worker ...");
  const worker = await startWorker({ config: CONFIG, readyPath: "/capacity/ready", persistTo, frozenSources: true });
  const started = Date.now();
  const timings = [];
  const rates = [];
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

    // Service times. The Worker's clock moves in whole milliseconds, so a figure is the mean of
    // GROUP runs in a row (resolution 1/GROUP ms); single runs are sampled too, for the tail.
    // Rounds go over every statement in turn, so noise from the (shared) machine lands on all.
    const plan = args.quick ? { rounds: 2, samples: 25 } : { rounds: 6, samples: 40 };
    const grouped = Object.fromEntries(STATEMENTS.map((s) => [s, []]));
    const single = Object.fromEntries(STATEMENTS.map((s) => [s, []]));
    for (const statement of STATEMENTS) await sample(o, statement, { rounds: 1, samples: 5, group: GROUP }); // warm-up
    for (let round = 0; round < plan.rounds; round++) {
      for (const statement of STATEMENTS) {
        grouped[statement].push(...(await sample(o, statement, { rounds: 1, samples: plan.samples, group: GROUP })));
        single[statement].push(...(await sample(o, statement, { rounds: 1, samples: plan.samples * 4, group: 1 })));
      }
      log(`timing round ${round + 1} of ${plan.rounds} done`);
    }
    for (const statement of STATEMENTS) {
      const g = grouped[statement];
      const one = single[statement];
      const figure = { median: median(g), p95: percentile(g, 95), groups: g.length, group: GROUP, singleP95: percentile(one, 95), singleMax: Math.max(...one), singles: one.length };
      out.statements[statement] = figure;
      timings.push([statement, figure]);
    }

    // Throughput: one database, one loop; one database, four loops; four databases, one loop each.
    const ms = args.quick ? 2_000 : 5_000;
    const shapes = [["1 database, 1 loop", 1, 1], ["1 database, 4 loops", 1, 4], ["4 databases, 1 loop each", 4, 1]];
    const byShape = Object.fromEntries(shapes.map(([name]) => [name, []]));
    for (let r = 0; r < (args.quick ? 1 : 3); r++) {
      for (const [name, dbs, loops] of shapes) byShape[name].push(await post(o, `/capacity/throughput?dbs=${dbs}&loops=${loops}&ms=${ms}`));
    }
    for (const [name] of shapes) {
      const runs = byShape[name];
      const perRun = runs.map((t) => t.perDb.reduce((a, b) => a + b, 0) / (t.elapsedMs / 1000));
      const perDb = runs[0].perDb.map((_, d) => median(runs.map((t) => t.perDb[d] / (t.elapsedMs / 1000))));
      out.throughput[name] = { runs, statementsPerSecond: median(perRun), min: Math.min(...perRun), max: Math.max(...perRun), perDbPerSecond: perDb };
      rates.push([name, out.throughput[name]]);
      log(`throughput ${name}: ${median(perRun).toFixed(0)} statements/s`);
    }
  } finally {
    await worker.stop();
    rmSync(persistTo, { recursive: true, force: true });
  }

  out.machine = { loadAverage: os.loadavg().map((v) => Number(v.toFixed(2))), nproc: os.availableParallelism(), cpu: os.cpus()[0]?.model ?? "unknown", memoryGiB: Number((os.totalmem() / 1024 ** 3).toFixed(1)), platform: `${os.type()} ${os.release()} ${os.arch()}`, node: process.version };
  console.log(`meshbox index capacity (${args.quick ? "quick" : "full"}), ${out.date}: ${out.machine.nproc} CPUs (${out.machine.cpu}), ${out.machine.memoryGiB} GiB RAM, ${out.machine.platform}, load average at the end ${out.machine.loadAverage.join(" ")}`);
  console.log("service time per statement, timed inside the Worker around await (local D1, wrangler dev); throughput on INDEX_DB_0..3");
  console.log(table(
    ["statement", "path", "median ms", "p95 ms", "single-run p95", "max/s at median"],
    timings.map(([name, f]) => [name, PATH_OF[name], f.median.toFixed(2), f.p95.toFixed(2), `${f.singleP95.toFixed(0)} ms`, (1000 / f.median).toFixed(0)]),
  ));
  console.log(`(median and p95 over ${timings[0]?.[1].groups ?? 0} samples, each the mean of ${GROUP} runs in a row; single-run p95 over ${timings[0]?.[1].singles ?? 0} runs, on a 1 ms clock)\n`);
  console.log(table(
    ["change-file upserts, sequential loops", "statements/s", "min-max over runs", "per database /s"],
    rates.map(([name, t]) => [name, t.statementsPerSecond.toFixed(0), `${t.min.toFixed(0)}-${t.max.toFixed(0)}`, t.perDbPerSecond.map((v) => v.toFixed(0)).join(", ")]),
  ));
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
