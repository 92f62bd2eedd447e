// `npm run bench`: starts the real worker under `wrangler dev` (as the e2e tests do) and the floor
// Worker (bench/floor: same bindings, bare operations) beside it, drives both interleaved with the
// device simulator, and prints one table: meshbox's medians, the floor, the ratio and the target
// each row meets; then the cost per operation (bench/counting) and workerd memory under load.
//   npm run bench                      the full run (5 runs, 10,000-file listing, 10,000-request load)
//   npm run bench -- --quick           about 2-3 minutes: 3 runs, fewer samples, 2,000-request load
//                                      (or BENCH_QUICK=1)
//   npm run bench -- --json [file]     also write the figures (default bench/results/latest.json)
//   npm run bench -- --runs 3          repeat each benchmark 3 times (default 5, quick 3)
//   npm run bench -- --samples 200     samples per run of the floor comparison (default 100, quick 20)
//   npm run bench -- --only floor:list,floor:catchup   only those parts of the floor comparison
//                                      (overhead, writes, reads, flush, list, catchup)
// The TypeScript support files run through Node 22's type stripping (erasable syntax only).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { renderTable } from "./stats.mjs";
import { findWorkerdPids, memoryOf } from "./process-memory.mjs";
import { BENCH_ADMIN_TOKEN, archiveRoundTrip, pushLatency, snapshotUpload, writesPerSecond } from "./benchmarks.mjs";
import { floorComparisons } from "./floor-bench.mjs";
import { costPerOperation, memoryUnderLoad, renderCost, PRICES_PER_MILLION } from "./cost.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
/** The whole run is bounded; a benchmark that would overrun is skipped and reported. */
const BUDGET_MS = 25 * 60_000;

function parseArgs(argv) {
  const args = { json: null, runs: null, samples: null, only: null, quick: process.env.BENCH_QUICK === "1" };
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
    } else if (a === "--quick") {
      args.quick = true;
    } else if (a === "--runs") {
      args.runs = Math.max(1, Math.min(20, Number(argv[++i]) || 5));
    } else if (a === "--samples") {
      args.samples = Math.max(5, Math.min(1_000, Number(argv[++i]) || 100));
    } else if (a === "--only") {
      args.only = String(argv[++i] ?? "").split(",");
    } else {
      throw new Error(`unknown argument ${a}; use --quick, --json [file], --runs N, --samples N, --only name,name`);
    }
  }
  args.runs ??= args.quick ? 3 : 5;
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

/** The floor comparison's parts named by `--only floor:<part>`, or null for all of them. */
function floorParts(only) {
  const named = (only ?? []).filter((o) => o.startsWith("floor:")).map((o) => o.slice("floor:".length));
  return named.length === 0 ? null : new Set(named);
}

const log = (line) => process.stderr.write(`[bench] ${line}\n`);

const ADMIN_TOKEN = BENCH_ADMIN_TOKEN;
const SIGNING_KEY = "bench-session-signing-key-0123456789abcdef";

const rssOf = (pids) => pids.reduce((n, pid) => n + (memoryOf(pid)?.rssKiB ?? 0), 0) / 1024;

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const { startWorker } = await import("../test/e2e/support/worker-process.ts");
  const sim = await import("../test/e2e/support/device.ts");
  const startedAt = Date.now();
  log(`starting wrangler dev for meshbox and the floor Worker (${args.quick ? "quick" : "full"} run) ...`);
  const [worker, floor] = await Promise.all([
    startWorker({
      vars: { LOG_REQUESTS: "0", ADMIN_TOKEN, SESSION_SIGNING_KEY: SIGNING_KEY, AUTH_RATE_LIMIT_PER_MINUTE: "1000" },
      frozenSources: true,
    }),
    startWorker({ config: "bench/floor/wrangler.toml", readyPath: "/floor/noop", frozenSources: true }),
  ]);
  const workerdPids = findWorkerdPids(worker.pid);
  const rssAtStartMiB = rssOf(workerdPids);
  const ctx = { base: worker.base, sim, runs: args.runs, log, workerPid: worker.pid };
  const samples = args.samples ?? (args.quick ? 20 : 100);
  const suites = [
    ["floor", () => floorComparisons({ meshbox: worker, floor, sim, runs: args.runs, samples, quick: args.quick, log, adminToken: ADMIN_TOKEN, parts: floorParts(args.only) })],
  ];
  if (!args.quick) {
    suites.push(
      ["writes", () => writesPerSecond(ctx)],
      ["push", () => pushLatency(ctx)],
      ["snapshot", () => snapshotUpload({ ...ctx, runs: Math.min(ctx.runs, 3) })],
      ["archive", () => archiveRoundTrip({ ...ctx, runs: Math.min(ctx.runs, 2) })],
    );
  }
  const rows = [];
  const failures = [];
  /** workerd RSS (MiB) after each suite: memory that stays after load shows up here. */
  const rssAfter = {};
  let memory = null;
  let cost = null;
  try {
    for (const [name, run] of suites) {
      if (args.only && !args.only.some((o) => o === name || o.startsWith(`${name}:`))) continue;
      if (Date.now() - startedAt > BUDGET_MS) {
        failures.push({ name, error: "skipped: time budget exhausted" });
        continue;
      }
      try {
        rows.push(...(await run()));
        rssAfter[name] = Math.round(rssOf(workerdPids));
        log(`workerd RSS after ${name}: ${rssAfter[name]} MiB`);
      } catch (err) {
        log(`${name} failed: ${err instanceof Error ? err.stack : String(err)}`);
        failures.push({ name, error: err instanceof Error ? err.message : String(err) });
      }
    }
    if (!args.only || args.only.includes("memory")) {
      try {
        memory = await memoryUnderLoad({ meshbox: worker, floor, sim, requests: args.quick ? 2_000 : 10_000, log });
      } catch (err) {
        failures.push({ name: "memory", error: err instanceof Error ? err.message : String(err) });
      }
    }
  } finally {
    await Promise.all([worker.stop(), floor.stop()]);
  }
  if (!args.only || args.only.includes("cost")) {
    log("starting the counting build for the cost table ...");
    const counting = await startWorker({ config: "bench/counting/wrangler.toml", frozenSources: true });
    try {
      cost = await costPerOperation({ counting, sim });
    } catch (err) {
      failures.push({ name: "cost", error: err instanceof Error ? err.message : String(err) });
    } finally {
      await counting.stop();
    }
  }

  const m = machine();
  m.workerdProcesses = workerdPids.length;
  m.workerdRssAtStartMiB = Math.round(rssAtStartMiB);
  const elapsed = ((Date.now() - startedAt) / 1000).toFixed(0);
  console.log(`meshbox benchmarks (${args.quick ? "quick" : "full"}): ${m.nproc} CPUs (${m.cpu}), ${m.memoryGiB} GiB RAM, ${m.platform}`);
  console.log(`node ${m.node}, workerd ${m.workerd}, wrangler ${m.wrangler} (wrangler dev, local R2/D1/DO); client, meshbox and the floor Worker share the machine`);
  console.log(`workerd (meshbox): ${m.workerdProcesses} process(es), RSS ${m.workerdRssAtStartMiB} MiB right after start; after each suite: ${Object.entries(rssAfter).map(([k, v]) => `${k} ${v} MiB`).join(", ")}`);
  console.log(`figures: median over runs of per-run medians (p95 likewise); ratio = median of per-run meshbox/floor ratios, interleaved request by request; total ${elapsed} s\n`);
  console.log(renderTable(rows));
  const compared = rows.filter((r) => r.meets !== undefined);
  console.log(`\ntargets met: ${compared.filter((r) => r.meets).length} of ${compared.length}${compared.some((r) => !r.meets) ? ` (not met: ${compared.filter((r) => !r.meets).map((r) => r.name).join("; ")})` : ""}`);
  if (cost) {
    console.log(`\ncost per operation (counting build; $ per million operations at ${Object.entries(PRICES_PER_MILLION).map(([k, v]) => `${k} $${v}/M`).join(", ")}; Workers requests not included):`);
    console.log(renderCost(cost));
    console.log(`flush detail: ${JSON.stringify(cost.flush.byOperation)}`);
  }
  if (memory) {
    console.log(`\nworkerd RSS under the same load (${args.quick ? "2,000" : "10,000"} requests each, 8 in flight):`);
    for (const [name, v] of Object.entries(memory)) {
      console.log(`  ${name.padEnd(8)} ${v.before.toFixed(0)} -> ${v.after.toFixed(0)} MiB (growth ${v.growth.toFixed(0)} MiB, peak ${v.peak.toFixed(0)} MiB, ${v.seconds.toFixed(0)} s)`);
    }
  }
  for (const f of failures) console.log(`\nFAILED ${f.name}: ${f.error}`);

  if (args.json) {
    mkdirSync(path.dirname(path.resolve(args.json)), { recursive: true });
    const out = { date: new Date().toISOString(), quick: args.quick, machine: m, workerdRssAfterSuiteMiB: rssAfter, runs: args.runs, elapsedSeconds: Number(elapsed), results: rows, cost, memory, failures };
    writeFileSync(path.resolve(args.json), `${JSON.stringify(out, null, 2)}\n`);
    console.log(`\nwrote ${path.resolve(args.json)}`);
  }
  if (failures.length > 0) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
