// meshbox against the floor Worker (bench/floor), measured interleaved in the same run: each
// sample times one meshbox request and then the floor's bare operation, so machine noise lands on
// both. Every row carries the floor, the ratio (median over runs of per-run median ratios) and the
// issue-12 target with whether this run meets it.
import { median, percentile, pool, timed } from "./stats.mjs";

const BODY_800 = "x".repeat(800);

async function drain(res, what) {
  const text = await res.text();
  if (!res.ok) throw new Error(`${what} answered ${res.status}: ${text.slice(0, 200)}`);
  return text;
}

/**
 * Runs `runs` rounds of `samples` samples; in each sample every contender runs once, in an order
 * that alternates between samples. Returns per contender the per-run { median, p95 }.
 */
async function interleave(runs, samples, contenders) {
  const names = Object.keys(contenders);
  const perRun = Object.fromEntries(names.map((n) => [n, []]));
  for (let run = 0; run < runs; run++) {
    const times = Object.fromEntries(names.map((n) => [n, []]));
    for (let i = 0; i < samples; i++) {
      const order = i % 2 === 0 ? names : [...names].reverse();
      for (const name of order) {
        const { ms } = await timed(() => contenders[name](i, run));
        times[name].push(ms);
      }
    }
    for (const n of names) perRun[n].push({ median: median(times[n]), p95: percentile(times[n], 95) });
  }
  return perRun;
}

/** A table row comparing a meshbox figure with its floor; `kind` is "ratio" or "overhead". */
function compare(name, mine, floor, { floorName, target, kind = "ratio", note = "" }) {
  const ratios = mine.map((r, i) => r.median / floor[i].median);
  const diffs = mine.map((r, i) => r.median - floor[i].median);
  const ratio = median(ratios);
  const overhead = median(diffs);
  const meets = kind === "overhead" ? overhead <= target : ratio <= target;
  return {
    name,
    unit: "ms",
    runs: mine.length,
    median: median(mine.map((r) => r.median)),
    p95: median(mine.map((r) => r.p95)),
    floorName,
    floor: median(floor.map((r) => r.median)),
    ratio,
    overhead,
    target: kind === "overhead" ? `<= +${target} ms` : `<= ${target}x`,
    meets,
    note,
    raw: { mine, floor },
  };
}

function changeName(sim, deviceId, i, ms = Date.now()) {
  return `${sim.formatHlc(ms, i % 0x10000, deviceId)}-chg_${sim.uuidv7(ms)}.json`;
}

async function mintSession(meshbox, admin, mesh) {
  const keyRes = await fetch(`${meshbox.base}/admin/keys`, {
    method: "POST",
    headers: { Authorization: `Bearer ${admin}`, "Content-Type": "application/json" },
    body: JSON.stringify({ name: "bench", meshPattern: mesh, access: "full" }),
  });
  const key = JSON.parse(await drain(keyRes, "POST /admin/keys"));
  const sessionRes = await fetch(`${meshbox.base}/auth/session`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key.key}`, "Content-Type": "application/json" },
    body: JSON.stringify({ mesh }),
  });
  return JSON.parse(await drain(sessionRes, "POST /auth/session")).token;
}

/**
 * The comparison rows. `meshbox` and `floor` are RunningWorker handles; `quick` shrinks counts
 * (fewer runs and samples, no 10,000-file folder, one catch-up run); `parts` (a Set of overhead,
 * writes, reads, flush, list, catchup; null for all of them) narrows the run.
 */
export async function floorComparisons({ meshbox, floor, sim, runs, samples, quick, log, adminToken, parts = null }) {
  const rows = [];
  const f = floor.origin;
  const mesh = `bench_floor_${crypto.randomUUID()}`;
  const fmesh = `floor_${crypto.randomUUID()}`;
  const d = new sim.Device({ base: meshbox.base, mesh, deviceId: "dev_bench" });
  await d.connect();

  // Fixed overhead: open mode and a session JWT, against the no-op floor.
  async function overhead() {
    const token = adminToken ? await mintSession(meshbox, adminToken, mesh) : null;
    const health = `${d.io}/health`;
    const contenders = {
      open: async () => drain(await fetch(health), "health"),
      floor: async () => drain(await fetch(`${f}/floor/noop`), "noop"),
    };
    if (token) contenders.session = async () => drain(await fetch(health, { headers: { Authorization: `Bearer ${token}` } }), "health (session)");
    const over = await interleave(runs, samples, contenders);
    rows.push(compare("fixed overhead, GET io/<m>/health, open mode", over.open, over.floor, { floorName: "no-op", target: 1, kind: "overhead", note: "log line off" }));
    if (token) rows.push(compare("fixed overhead, GET io/<m>/health, session JWT", over.session, over.floor, { floorName: "no-op", target: 1, kind: "overhead", note: "log line off" }));
  }

  // Writes: change file vs R2 put + D1 upsert; head.json and the device record vs a DO SQLite write.
  async function writes() {
    let head = 0;
    const measured = await interleave(runs, samples, {
      change: async (i) => drain(await d.putFile(d.path(`changes/${changeName(sim, d.deviceId, i)}`), BODY_800), "change PUT"),
      floorChange: async (i, run) => drain(await fetch(`${f}/floor/r2-d1?mesh=${fmesh}&path=/A/changes/c${run}_${i}.json`, { method: "PUT", body: BODY_800 }), "r2-d1"),
      head: async () => drain(await d.putFile(d.path("changes/head.json"), JSON.stringify({ latestHlc: sim.formatHlc(Date.now(), head++ % 0x10000, d.deviceId) })), "head PUT"),
      device: async (i) => drain(await d.putFile(d.path(`devices/${d.deviceId}.json`), JSON.stringify({ deviceId: d.deviceId, epoch: 0, merged: i, updatedAt: new Date().toISOString() })), "device PUT"),
      floorWrite: async (i) => drain(await fetch(`${f}/floor/do?mesh=${fmesh}&key=k${i % 4}`, { method: "PUT", body: '{"latestHlc":"x"}' }), "do write"),
    });
    rows.push(compare("change-file PUT, 800 B, sequential", measured.change, measured.floorChange, { floorName: "R2 put + D1 upsert", target: 1.1 }));
    rows.push(compare("PUT changes/head.json", measured.head, measured.floorWrite, { floorName: "DO SQLite write", target: 1.2 }));
    rows.push(compare("PUT devices/<id>.json", measured.device, measured.floorWrite, { floorName: "DO SQLite write", target: 1.2 }));

    // The same change-file PUT while another device listens on the mesh's socket: then the
    // isolate holds writes for a quiet window and tells the hub about once per window (with no
    // socket open, once per PUSH_HOLD_MS).
    const listener = new sim.Device({ base: meshbox.base, mesh, deviceId: "dev_listen" });
    await listener.subscribe();
    try {
      const listened = await interleave(runs, samples, {
        change: async (i) => drain(await d.putFile(d.path(`changes/${changeName(sim, d.deviceId, 50_000 + i)}`), BODY_800), "change PUT"),
        floorChange: async (i, run) => drain(await fetch(`${f}/floor/r2-d1?mesh=${fmesh}&path=/A/changes/l${run}_${i}.json`, { method: "PUT", body: BODY_800 }), "r2-d1"),
      });
      rows.push(compare("change-file PUT, 800 B, a device listening", listened.change, listened.floorChange, { floorName: "R2 put + D1 upsert", target: 1.1, note: "a hub notify per quiet window" }));
    } finally {
      await listener.close();
    }
  }

  // Control-object GETs vs a DO RPC reading one SQLite row.
  async function reads() {
    await drain(await fetch(`${f}/floor/do?mesh=${fmesh}&key=m`, { method: "PUT", body: '{"currentGeneration":1,"file":"manifest-1.json"}' }), "seed");
    const measured = await interleave(runs, samples, {
      manifest: async () => drain(await d.getFile(d.path("manifest.json")), "GET manifest.json"),
      generation: async () => drain(await d.getFile(d.path("manifest-1.json")), "GET manifest-1.json"),
      headGet: async () => drain(await d.getFile(d.path("changes/head.json")), "GET head.json"),
      deviceGet: async () => drain(await d.getFile(d.path(`devices/${d.deviceId}.json`)), "GET device"),
      floor: async () => drain(await fetch(`${f}/floor/do?mesh=${fmesh}&key=m`), "do read"),
    });
    for (const [key, label] of [["manifest", "manifest.json"], ["generation", "manifest-1.json (generation)"], ["headGet", "changes/head.json"], ["deviceGet", "devices/<id>.json"]]) {
      rows.push(compare(`GET ${label}`, measured[key], measured.floor, { floorName: "DO RPC", target: 1.1 }));
    }
  }

  // A full client flush (7 requests) vs the same 7 bare operations in sequence.
  async function flushes() {
    const measured = await interleave(runs, Math.max(5, Math.round(samples / 4)), {
      flush: async (i) => {
        d.write({ [`row${i % 5}`]: String(i) });
        await d.flush();
      },
      floor: async (i, run) => {
        for (let k = 0; k < 2; k++) await drain(await fetch(`${f}/floor/do?mesh=${fmesh}&key=m`), "do read");
        await drain(await fetch(`${f}/floor/r2-d1?mesh=${fmesh}&path=/A/changes/fl${run}_${i}.json`, { method: "PUT", body: BODY_800 }), "r2-d1");
        await drain(await fetch(`${f}/floor/do?mesh=${fmesh}&key=m`), "do read");
        await drain(await fetch(`${f}/floor/do?mesh=${fmesh}&key=h`, { method: "PUT", body: "{}" }), "do write");
        await drain(await fetch(`${f}/floor/do?mesh=${fmesh}&key=m`), "do read");
        await drain(await fetch(`${f}/floor/do?mesh=${fmesh}&key=d`, { method: "PUT", body: "{}" }), "do write");
      },
    });
    rows.push(compare("full client flush (7 requests, one device)", measured.flush, measured.floor, { floorName: "4 DO RPC + R2/D1 + 2 DO writes", target: 1.1 }));
  }

  /**
   * A folder of `count` change files in meshbox (32 PUTs in flight, as a busy mesh fills) and the
   * same names, sizes and bodies in the floor: its index rows, and its R2 objects when `bodies`.
   */
  async function fill(root, count, { bodies }) {
    const filler = new sim.Device({ base: meshbox.base, mesh, root, deviceId: "dev_fill" });
    const start = Date.now() - count;
    const files = Array.from({ length: count }, (_, i) => {
      const name = changeName(sim, filler.deviceId, i, start + i);
      return { name, body: sim.seal({ change: name, rows: { [`k${i % 50}`]: String(i) } }, 200) };
    });
    const { ms } = await timed(() => pool(files, 32, async ({ name, body }) => drain(await filler.putFile(filler.path(`changes/${name}`), body), "fill PUT")));
    log(`filled ${root}/changes with ${count} files at ${(count / (ms / 1000)).toFixed(0)} PUT/s (32 in flight)`);
    for (let at = 0; at < count; at += 1_000) {
      const page = files.slice(at, at + 1_000).map(({ name, body }) => ({ name, size: body.length }));
      await drain(await fetch(`${f}/floor/d1-fill?mesh=${fmesh}&parent=${root}/changes`, { method: "POST", body: JSON.stringify(page) }), "d1-fill");
    }
    if (bodies) {
      await pool(files, 16, async ({ name, body }) => drain(await fetch(`${f}/floor/r2?key=${encodeURIComponent(`${fmesh}/${root}/${name}`)}`, { method: "PUT", body }), "r2 put"));
    }
    return files;
  }

  // Listings: 1,000 (and, in the full run, 10,000) change files vs a D1 select of the same rows
  // (same names and sizes) serialized to JSON. Both sides only read the answer's text: parsing it
  // is the client's time, not the server's.
  async function listings() {
    for (const count of quick ? [1_000] : [1_000, 10_000]) {
      const root = `/List${count / 1000}k`;
      await fill(root, count, { bodies: false });
      const lister = new sim.Device({ base: meshbox.base, mesh, root, deviceId: "dev_list" });
      const listed = await lister.listFiles(lister.path("changes"));
      if (listed.length !== count) throw new Error(`listing returned ${listed.length} of ${count}`);
      const floorListed = JSON.parse(await drain(await fetch(`${f}/floor/d1-list?mesh=${fmesh}&parent=${root}/changes`), "d1-list")).files;
      if (floorListed.length !== count) throw new Error(`floor listing returned ${floorListed.length} of ${count}`);
      const measured = await interleave(runs, count > 1_000 ? Math.max(5, Math.round(samples / 5)) : Math.max(5, Math.round(samples / 2)), {
        list: async () => drain(await lister.postJson("list-files", { path: lister.path("changes") }), "list-files"),
        floor: async () => drain(await fetch(`${f}/floor/d1-list?mesh=${fmesh}&parent=${root}/changes`), "d1-list"),
      });
      const row = compare(`list-files, ${count.toLocaleString("en")} files`, measured.list, measured.floor, { floorName: "D1 select + JSON", target: 1.2 });
      if (count === 10_000) {
        const spread = row.p95 / row.median;
        row.target = "p95 <= 2x p50";
        row.meets = spread <= 2;
        row.note = `p95/p50 ${spread.toFixed(2)}`;
      }
      rows.push(row);
      log(`list ${count} done`);
    }
  }

  // Catch-up: a new device connects to a 1,000-file folder (sequential GETs, as the client does)
  // vs 1,000 sequential R2 gets of the same bodies, each opened as the client opens it.
  async function catchUp() {
    const root = "/CatchUp1k";
    const files = await fill(root, 1_000, { bodies: true });
    await new sim.Device({ base: meshbox.base, mesh, root, deviceId: "dev_boot" }).bootstrap();
    const measured = await interleave(quick ? 1 : runs, 1, {
      meshbox: async (_i, run) => {
        const fresh = new sim.Device({ base: meshbox.base, mesh, root, deviceId: `dev_new${run}` });
        await fresh.connect();
        if (fresh.merged.size < 1_000) throw new Error(`catch-up merged ${fresh.merged.size} of 1000`);
      },
      floor: async () => {
        for (const { name } of files) sim.unseal(await drain(await fetch(`${f}/floor/r2?key=${encodeURIComponent(`${fmesh}/${root}/${name}`)}`), "r2 get"));
      },
    });
    rows.push(compare("catch-up, new device over 1,000 change files", measured.meshbox, measured.floor, { floorName: "1,000 R2 gets", target: 1.1, note: "connect + pull + flush" }));
    // One GET of a listed change file against one R2 get of the same body: catch-up's unit.
    const getter = new sim.Device({ base: meshbox.base, mesh, root, deviceId: "dev_get" });
    await getter.listFiles(getter.path("changes"));
    const singles = await interleave(runs, samples, {
      meshbox: async (i) => sim.unseal(await drain(await getter.getFile(getter.path(`changes/${files[i % files.length].name}`)), "GET change file")),
      floor: async (i) => sim.unseal(await drain(await fetch(`${f}/floor/r2?key=${encodeURIComponent(`${fmesh}/${root}/${files[i % files.length].name}`)}`), "r2 get")),
    });
    rows.push(compare("GET of a listed change file", singles.meshbox, singles.floor, { floorName: "R2 get", target: 1.1, note: "catch-up's unit" }));
  }

  const all = { overhead, writes, reads, flush: flushes, list: listings, catchup: catchUp };
  for (const [part, run] of Object.entries(all)) {
    if (parts !== null && !parts.has(part)) continue;
    await run();
    log(`${part} done`);
  }
  return rows;
}
