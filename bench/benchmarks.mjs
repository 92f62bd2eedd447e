// The individual benchmarks. Each takes the running worker and the device simulator module and
// returns table rows; every loop is bounded in count, and the caller bounds the whole run in time.
import { median, percentile, timed } from "./stats.mjs";
import { findWorkerdPids, sampleRss } from "./process-memory.mjs";

const MiB = 1024 * 1024;

function newMesh(tag) {
  return `bench_${tag}_${crypto.randomUUID()}`;
}

/** Median of per-run medians and of per-run p95s, in one table row. */
function summarize(name, unit, perRun, note) {
  return {
    name,
    unit,
    runs: perRun.length,
    median: median(perRun.map((r) => r.median)),
    p95: perRun[0]?.p95 === undefined ? null : median(perRun.map((r) => r.p95)),
    note,
    raw: perRun,
  };
}

function changeName(sim, deviceId, i, ms = Date.now()) {
  return `${sim.formatHlc(ms, i % 0x10000, deviceId)}-chg_${sim.uuidv7(ms)}.json`;
}

async function mustOk(res, what) {
  const text = await res.text();
  if (!res.ok) throw new Error(`${what} answered ${res.status}: ${text.slice(0, 200)}`);
  return text;
}

/** Full client flushes (about 7 requests each) from N concurrent devices on one mesh. */
async function flushThroughput({ base, sim }, devices, flushesPerDevice) {
  const mesh = newMesh(`w${devices}`);
  const all = Array.from({ length: devices }, (_, i) => new sim.Device({ base, mesh, deviceId: `dev_w${i}` }));
  for (const d of all) await d.connect();
  const before = all.reduce((n, d) => n + [...d.requestCounts.values()].reduce((a, b) => a + b, 0), 0);
  const { ms } = await timed(() =>
    Promise.all(
      all.map(async (d) => {
        for (let i = 0; i < flushesPerDevice; i++) {
          d.write({ [`row${i % 5}`]: `${d.deviceId}:${i}` });
          await d.flush();
        }
      }),
    ),
  );
  const after = all.reduce((n, d) => n + [...d.requestCounts.values()].reduce((a, b) => a + b, 0), 0);
  const flushes = devices * flushesPerDevice;
  return { perSecond: flushes / (ms / 1000), requestsPerFlush: (after - before) / flushes, requestsPerSecond: (after - before) / (ms / 1000) };
}

export async function writesPerSecond(ctx) {
  const { runs, log } = ctx;
  const eight = [];
  const one = [];
  let requestsPerFlush = 0;
  for (let run = 0; run < runs; run++) {
    const r8 = await flushThroughput(ctx, 8, 15);
    const r1 = await flushThroughput(ctx, 1, 30);
    eight.push(r8.perSecond);
    one.push(r1.perSecond);
    requestsPerFlush = r8.requestsPerFlush;
    log(`writes/s run ${run + 1}/${runs}: 8 devices ${r8.perSecond.toFixed(1)}/s (${r8.requestsPerSecond.toFixed(0)} req/s), 1 device ${r1.perSecond.toFixed(1)}/s`);
  }
  const ratios = eight.map((v, i) => v / one[i]);
  return [
    { name: "writes/s, 8 concurrent devices (full flush)", unit: "flush/s", runs, median: median(eight), p95: null, note: `${requestsPerFlush.toFixed(1)} requests per flush, 120 flushes per run`, raw: eight },
    { name: "writes/s, 1 device (full flush)", unit: "flush/s", runs, median: median(one), p95: null, note: "30 flushes per run", raw: one },
    { name: "8-device / 1-device write ratio", unit: "x", runs, median: median(ratios), p95: null, note: "2 cores shared by client and worker", raw: ratios },
  ];
}

/** Write acknowledged -> invalidation frame received, one write at a time (no coalescing). */
export async function pushLatency({ base, sim, runs, log, writes = 200 }) {
  const perRun = [];
  for (let run = 0; run < runs; run++) {
    const mesh = newMesh("push");
    const writer = new sim.Device({ base, mesh, deviceId: "dev_pw" });
    const reader = new sim.Device({ base, mesh, deviceId: "dev_pr" });
    await reader.subscribe();
    const times = [];
    try {
      for (let i = 0; i < writes; i++) {
        const name = changeName(sim, writer.deviceId, i);
        const path = writer.path(`changes/${name}`);
        await mustOk(await writer.putFile(path, sim.seal({ change: name, rows: { i: String(i) } }, 200)), "change PUT");
        const acked = performance.now();
        const frame = await reader.nextFrame((f) => f.path === path || (Array.isArray(f.paths) && f.paths.includes(path)), 10_000);
        times.push(Math.max(0, frame.receivedAt - acked));
        reader.drainFrames();
      }
    } finally {
      await reader.close();
    }
    perRun.push({ median: median(times), p95: percentile(times, 95) });
    log(`push latency run ${run + 1}/${runs}: p50 ${median(times).toFixed(1)} ms, p95 ${percentile(times, 95).toFixed(1)} ms`);
  }
  return [summarize("push latency (ack -> frame)", "ms", perRun, `${writes} writes per run; includes the 100 ms quiet window`)];
}

/** A 100 MiB snapshot PUT: time, throughput and the workerd process's peak memory. */
export async function snapshotUpload({ base, sim, runs, log, workerPid }) {
  const size = 100 * MiB;
  const body = Buffer.alloc(size);
  for (let off = 0; off < size; off += 65_536) crypto.getRandomValues(body.subarray(off, Math.min(size, off + 65_536)));
  const pids = findWorkerdPids(workerPid);
  const times = [];
  const peaks = [];
  let baseline = 0;
  for (let run = 0; run < runs; run++) {
    const d = new sim.Device({ base, mesh: newMesh("snap"), deviceId: "dev_snap" });
    const sampler = sampleRss(pids);
    baseline = Math.max(baseline, sampler.stop());
    const during = sampleRss(pids);
    const { ms } = await timed(async () => mustOk(await d.putFile(d.path("mainline/snapshot-1-server_relay_1.json"), body), "snapshot PUT"));
    const peak = during.stop();
    times.push(ms);
    peaks.push(peak);
    log(`100 MiB snapshot run ${run + 1}/${runs}: ${ms.toFixed(0)} ms, workerd peak RSS ${(peak / 1024).toFixed(0)} MiB`);
  }
  const throughput = times.map((ms) => 100 / (ms / 1000));
  const rows = [
    { name: "100 MiB snapshot upload", unit: "ms", runs, median: median(times), p95: null, note: "single PUT, streamed to R2", raw: times },
    { name: "100 MiB snapshot upload throughput", unit: "MiB/s", runs, median: median(throughput), p95: null, note: "", raw: throughput },
  ];
  if (pids.length > 0) {
    rows.push({ name: "workerd peak RSS during the upload", unit: "MiB", runs, median: median(peaks) / 1024, p95: null, note: `max ${(Math.max(...peaks) / 1024).toFixed(0)} MiB; ${(baseline / 1024).toFixed(0)} MiB just before; VmRSS of ${pids.length} workerd process(es) every 25 ms`, raw: peaks.map((k) => k / 1024) });
  } else {
    rows.push({ name: "workerd peak RSS during the upload", unit: "MiB", runs: 0, median: null, p95: null, note: "workerd process not found under /proc" });
  }
  return rows;
}

/** Admin token the bench worker is started with (the archive suite uses the admin API). */
export const BENCH_ADMIN_TOKEN = "bench-admin-token-0123456789abcdef";

/**
 * Export and import of a mesh holding a committed 100 MiB snapshot: MiB/s and workerd peak RSS
 * for each direction. The archive streams to a temporary file and back, so the client holds
 * none of it in memory either.
 */
export async function archiveRoundTrip({ base, sim, runs, log, workerPid }) {
  const { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } = await import("node:fs");
  const { Readable } = await import("node:stream");
  const { pipeline } = await import("node:stream/promises");
  const os = await import("node:os");
  const path = await import("node:path");
  const auth = { Authorization: `Bearer ${BENCH_ADMIN_TOKEN}` };
  const size = 100 * MiB;
  const body = Buffer.alloc(size);
  for (let off = 0; off < size; off += 65_536) crypto.getRandomValues(body.subarray(off, Math.min(size, off + 65_536)));
  const pids = findWorkerdPids(workerPid);
  const dir = mkdtempSync(path.join(os.tmpdir(), "meshbox-bench-archive-"));
  const exportRate = [];
  const importRate = [];
  const exportPeak = [];
  const importPeak = [];
  const exportBefore = [];
  const importBefore = [];
  const now = () => {
    const s = sampleRss(pids);
    return s.stop();
  };
  try {
    for (let run = 0; run < runs; run++) {
      const mesh = newMesh("archive");
      const d = new sim.Device({ base, mesh, deviceId: "dev_arch" });
      await d.connect();
      const snapshotPath = d.path("mainline/snapshot-2-server_relay_1.json");
      await mustOk(await d.putFile(snapshotPath, body), "snapshot PUT");
      const manifest = await d.buildManifest(2, snapshotPath);
      await mustOk(await d.putFile(d.path("manifest-2.json"), JSON.stringify(manifest)), "generation PUT");
      await mustOk(await d.putFile(d.path("manifest.json"), JSON.stringify({ currentGeneration: 2, file: "manifest-2.json" })), "pointer PUT");
      const file = path.join(dir, `${mesh}.tar`);

      exportBefore.push(now());
      const out = sampleRss(pids);
      const exported = await timed(async () => {
        const res = await fetch(`${base}/admin/meshes/${mesh}/export`, { headers: auth });
        if (!res.ok) throw new Error(`export answered ${res.status}: ${await res.text()}`);
        await pipeline(Readable.fromWeb(res.body), createWriteStream(file));
      });
      exportPeak.push(out.stop());
      const bytes = statSync(file).size;
      exportRate.push(bytes / MiB / (exported.ms / 1000));

      const target = newMesh("restore");
      importBefore.push(now());
      const into = sampleRss(pids);
      const imported = await timed(async () => {
        const res = await fetch(`${base}/admin/meshes/${target}/import`, {
          method: "POST",
          headers: { ...auth, "Content-Type": "application/x-tar", "Content-Length": String(bytes) },
          body: Readable.toWeb(createReadStream(file)),
          duplex: "half",
        });
        await mustOk(res, "import");
      });
      importPeak.push(into.stop());
      importRate.push(bytes / MiB / (imported.ms / 1000));
      rmSync(file, { force: true });
      log(`archive run ${run + 1}/${runs}: export ${exportRate.at(-1).toFixed(0)} MiB/s (peak ${(exportPeak.at(-1) / 1024).toFixed(0)} MiB), import ${importRate.at(-1).toFixed(0)} MiB/s (peak ${(importPeak.at(-1) / 1024).toFixed(0)} MiB)`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const rss = (peaks) => (pids.length > 0 ? median(peaks) / 1024 : null);
  const growth = (peaks, before) => median(peaks.map((p, i) => p - before[i])) / 1024;
  const note = (peaks, before) =>
    pids.length > 0
      ? `+${growth(peaks, before).toFixed(0)} MiB over the RSS just before (median); VmRSS of ${pids.length} workerd process(es) every 25 ms`
      : "workerd process not found under /proc";
  return [
    { name: "mesh export, 100 MiB snapshot", unit: "MiB/s", runs, median: median(exportRate), p95: null, note: "GET .../export streamed to a file", raw: exportRate },
    { name: "workerd peak RSS during the export", unit: "MiB", runs, median: rss(exportPeak), p95: null, note: note(exportPeak, exportBefore), raw: exportPeak.map((k) => k / 1024) },
    { name: "mesh import, 100 MiB snapshot", unit: "MiB/s", runs, median: median(importRate), p95: null, note: "POST .../import streamed from a file", raw: importRate },
    { name: "workerd peak RSS during the import", unit: "MiB", runs, median: rss(importPeak), p95: null, note: note(importPeak, importBefore), raw: importPeak.map((k) => k / 1024) },
  ];
}
