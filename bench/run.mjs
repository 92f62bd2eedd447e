// `npm run bench`: starts the real worker under `wrangler dev` (as the e2e tests do), drives it
// with the device simulator, and prints one table of medians (p95 where relevant).
//   npm run bench                      print the table
//   npm run bench -- --json [file]     also write the figures (default bench/results/latest.json)
//   npm run bench -- --runs 3          repeat each benchmark 3 times (default 5)
// The TypeScript support files run through Node 22's type stripping (erasable syntax only).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { renderTable } from "./stats.mjs";
import { findWorkerdPids, memoryOf } from "./process-memory.mjs";
import { BENCH_ADMIN_TOKEN, archiveRoundTrip, changePutLatency, listAndCatchUp, pushLatency, snapshotUpload, writesPerSecond } from "./benchmarks.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
/** The whole run is bounded; a benchmark that would overrun is skipped and reported. */
const BUDGET_MS = 12 * 60_000;

function parseArgs(argv) {
  const args = { json: null, runs: 5, only: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--json") {
      const next = argv[i + 1];
      if (next !== undefined && !next.startsWith("--")) {
        args.json = next;
        i++;
      } else {
        args.json = path.join(here, "results", "latest.json");
      }
    } else if (a === "--runs") {
      args.runs = Math.max(1, Math.min(20, Number(argv[++i]) || 5));
    } else if (a === "--only") {
      args.only = String(argv[++i] ?? "").split(",");
    } else {
      throw new Error(`unknown argument ${a}; use --json [file], --runs N, --only name,name`);
    }
  }
  return args;
}

function versionOf(pkg) {
  try {
    return JSON.parse(readFileSync(path.join(root, "node_modules", pkg, "package.json"), "utf8")).version;
  } catch {
    return "unknown";
  }
}

function machine() {
  return {
    nproc: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? "unknown",
    memoryGiB: Number((os.totalmem() / 1024 ** 3).toFixed(1)),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    workerd: versionOf("workerd"),
    wrangler: versionOf("wrangler"),
  };
}

const log = (line) => process.stderr.write(`[bench] ${line}\n`);

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const { startWorker } = await import("../test/e2e/support/worker-process.ts");
  const sim = await import("../test/e2e/support/device.ts");
  const startedAt = Date.now();
  log("starting wrangler dev ...");
  const worker = await startWorker({ vars: { LOG_REQUESTS: "0", ADMIN_TOKEN: BENCH_ADMIN_TOKEN }, frozenSources: true });
  const workerdPids = findWorkerdPids(worker.pid);
  const rssAtStartMiB = workerdPids.reduce((n, pid) => n + (memoryOf(pid)?.rssKiB ?? 0), 0) / 1024;
  const ctx = { base: worker.base, sim, runs: args.runs, log, workerPid: worker.pid };
  const suites = [
    ["put", changePutLatency, (c) => c],
    ["writes", writesPerSecond, (c) => c],
    ["push", pushLatency, (c) => c],
    ["list", listAndCatchUp, (c) => c],
    ["snapshot", snapshotUpload, (c) => ({ ...c, runs: Math.min(c.runs, 3) })],
    ["archive", archiveRoundTrip, (c) => ({ ...c, runs: Math.min(c.runs, 2) })],
  ];
  const rows = [];
  const failures = [];
  /** workerd RSS (MiB) after each suite: memory that stays after load shows up here. */
  const rssAfter = {};
  try {
    for (const [name, run, adjust] of suites) {
      if (args.only && !args.only.includes(name)) continue;
      if (Date.now() - startedAt > BUDGET_MS) {
        failures.push({ name, error: "skipped: time budget exhausted" });
        continue;
      }
      try {
        rows.push(...(await run(adjust(ctx))));
        const rss = workerdPids.reduce((n, pid) => n + (memoryOf(pid)?.rssKiB ?? 0), 0) / 1024;
        rssAfter[name] = Math.round(rss);
        log(`workerd RSS after ${name}: ${rssAfter[name]} MiB`);
      } catch (err) {
        log(`${name} failed: ${err instanceof Error ? err.message : String(err)}`);
        failures.push({ name, error: err instanceof Error ? err.message : String(err) });
      }
    }
  } finally {
    await worker.stop();
  }

  const m = machine();
  m.workerdProcesses = workerdPids.length;
  m.workerdRssAtStartMiB = Math.round(rssAtStartMiB);
  const elapsed = ((Date.now() - startedAt) / 1000).toFixed(0);
  console.log(`meshbox benchmarks: ${m.nproc} CPUs (${m.cpu}), ${m.memoryGiB} GiB RAM, ${m.platform}`);
  console.log(`node ${m.node}, workerd ${m.workerd}, wrangler ${m.wrangler} (wrangler dev, local R2/D1/DO); client and worker share the machine`);
  console.log(`workerd: ${m.workerdProcesses} process(es), RSS ${m.workerdRssAtStartMiB} MiB right after start; after each suite: ${Object.entries(rssAfter).map(([k, v]) => `${k} ${v} MiB`).join(", ")}`);
  console.log(`figures: median over runs (p95 where a run has many samples); total ${elapsed} s\n`);
  console.log(renderTable(rows));
  for (const f of failures) console.log(`\nFAILED ${f.name}: ${f.error}`);

  if (args.json) {
    mkdirSync(path.dirname(path.resolve(args.json)), { recursive: true });
    const out = { date: new Date().toISOString(), machine: m, workerdRssAfterSuiteMiB: rssAfter, runs: args.runs, elapsedSeconds: Number(elapsed), results: rows, failures };
    writeFileSync(path.resolve(args.json), `${JSON.stringify(out, null, 2)}\n`);
    console.log(`\nwrote ${path.resolve(args.json)}`);
  }
  if (failures.length > 0) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
