// Cost per operation, counted by meshbox's counting build (bench/counting): the real Worker with
// its bindings wrapped. Prices: Cloudflare's published list prices beyond the included usage
// (R2 Standard class A $4.50 / million, class B $0.36 / million, DeleteObject free; D1 $1.00 per
// million rows written, $0.001 per million rows read; Durable Objects $0.15 per million requests).
import { sampleRss, findWorkerdPids, memoryOf } from "./process-memory.mjs";
import { pool } from "./stats.mjs";

export const PRICES_PER_MILLION = { r2ClassA: 4.5, r2ClassB: 0.36, d1RowsWritten: 1.0, d1RowsRead: 0.001, doRequests: 0.15 };

async function counts(origin, reset) {
  const res = await fetch(`${origin}/__bench/counts`, { method: reset ? "POST" : "GET" });
  return res.json();
}

/** Counts what `work` costs; waits for waitUntil work (push, read touches) to settle first. */
async function measure(origin, work) {
  await new Promise((r) => setTimeout(r, 300));
  await counts(origin, true);
  await work();
  await new Promise((r) => setTimeout(r, 300));
  return counts(origin, true);
}

export function dollarsPerMillion(c) {
  return (
    c.r2ClassA * PRICES_PER_MILLION.r2ClassA +
    c.r2ClassB * PRICES_PER_MILLION.r2ClassB +
    c.d1RowsWritten * PRICES_PER_MILLION.d1RowsWritten +
    c.d1RowsRead * PRICES_PER_MILLION.d1RowsRead +
    c.doRequests * PRICES_PER_MILLION.doRequests
  );
}

/** One steady-state 7-request flush, one pull of one new change, one compaction of 10 changes. */
export async function costPerOperation({ counting, sim }) {
  const mesh = `bench_cost_${crypto.randomUUID()}`;
  const a = new sim.Device({ base: counting.base, mesh, deviceId: "dev_ca" });
  const b = new sim.Device({ base: counting.base, mesh, deviceId: "dev_cb" });
  await a.connect();
  await b.connect();
  for (let i = 0; i < 3; i++) {
    a.write({ warm: String(i) });
    await a.flush();
  }
  await b.pull();
  const out = {};
  out.flush = await measure(counting.origin, async () => {
    a.write({ k: "v" });
    await a.flush();
  });
  a.write({ k: "w" });
  await a.flush();
  out.pull = await measure(counting.origin, () => b.pull());
  for (let i = 0; i < 10; i++) {
    a.write({ [`c${i}`]: String(i) });
    await a.flush();
  }
  out.compaction = await measure(counting.origin, async () => {
    const r = await a.compact();
    if (!r.ok) throw new Error(`compaction failed at ${r.stage}: ${r.status}`);
  });
  return out;
}

export function renderCost(cost) {
  const cols = ["operation", "D1 read stmts", "D1 write stmts", "D1 rows read", "D1 rows written", "R2 class A", "R2 class B", "R2 free", "DO requests", "$ per million"];
  const body = Object.entries(cost).map(([op, c]) => [op, c.d1Reads, c.d1Writes, c.d1RowsRead, c.d1RowsWritten, c.r2ClassA, c.r2ClassB, c.r2Free, c.doRequests, dollarsPerMillion(c).toFixed(2)].map(String));
  const widths = cols.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [line(cols), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

function rssMiB(pids) {
  return pids.reduce((n, pid) => n + (memoryOf(pid)?.rssKiB ?? 0), 0) / 1024;
}

/**
 * The same sustained load on meshbox and on the floor: `requests` requests each, 8 in flight, in
 * the flush's mix (2 control GETs, a change PUT, a control PUT per 4 requests, the floor doing the
 * bare operation of each). Returns workerd RSS before, peak and after for both.
 */
export async function memoryUnderLoad({ meshbox, floor, sim, requests, log }) {
  const mesh = `bench_mem_${crypto.randomUUID()}`;
  const d = new sim.Device({ base: meshbox.base, mesh, deviceId: "dev_mem" });
  await d.connect();
  const f = floor.origin;
  const fmesh = `mem_${crypto.randomUUID()}`;
  await fetch(`${f}/floor/do?mesh=${fmesh}&key=m`, { method: "PUT", body: "{}" }).then((r) => r.arrayBuffer());
  const body = "z".repeat(800);
  const meshboxOp = async (i) => {
    let res;
    switch (i % 4) {
      case 0: res = await d.getFile(d.path("manifest.json")); break;
      case 1: res = await d.putFile(d.path(`changes/${sim.formatHlc(Date.now(), i % 0x10000, d.deviceId)}-chg_${sim.uuidv7()}.json`), body); break;
      case 2: res = await d.getFile(d.path("changes/head.json")); break;
      default: res = await d.putFile(d.path(`devices/${d.deviceId}.json`), JSON.stringify({ i })); break;
    }
    await res.arrayBuffer();
  };
  const floorOp = async (i) => {
    let res;
    switch (i % 4) {
      case 1: res = await fetch(`${f}/floor/r2-d1?mesh=${fmesh}&path=/m/c${i}.json`, { method: "PUT", body }); break;
      case 3: res = await fetch(`${f}/floor/do?mesh=${fmesh}&key=d`, { method: "PUT", body: JSON.stringify({ i }) }); break;
      default: res = await fetch(`${f}/floor/do?mesh=${fmesh}&key=m`); break;
    }
    await res.arrayBuffer();
  };
  const out = {};
  for (const [name, worker, op] of [["floor", floor, floorOp], ["meshbox", meshbox, meshboxOp]]) {
    const pids = findWorkerdPids(worker.pid);
    const before = rssMiB(pids);
    const sampler = sampleRss(pids, 100);
    const started = performance.now();
    await pool(Array.from({ length: requests }, (_, i) => i), 8, op);
    const peak = sampler.stop() / 1024;
    const after = rssMiB(pids);
    out[name] = { before, peak, after, growth: after - before, seconds: (performance.now() - started) / 1000 };
    log(`memory ${name}: ${before.toFixed(0)} -> ${after.toFixed(0)} MiB (peak ${peak.toFixed(0)}) over ${requests} requests`);
  }
  return out;
}
