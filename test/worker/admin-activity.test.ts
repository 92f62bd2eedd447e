// Hourly write counters and GET /sync/admin/meshes/<mesh>/activity, the dashboard's chart: counted
// by the mesh's hub (no D1 statement on the write path), copied to D1's mesh_hourly from the hub's
// alarm (migrations 0004 and 0006), pruned by maintenance past 48 h, forgotten by a wipe.
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { adminEnv, asAdmin, call, putFile, uniqueMesh } from "./admin-support";
import { meshDb } from "./io-support";

const target = adminEnv();
const HOUR = 3_600_000;

interface Activity { mesh: string; hours: number; buckets: { hour: string; writes: number; bytes: number }[] }

async function activity(mesh: string, query = ""): Promise<Activity> {
  const res = await call(target, `/admin/meshes/${mesh}/activity${query}`, asAdmin());
  expect(res.status).toBe(200);
  return (await res.json()) as Activity;
}

const sum = (a: Activity, key: "writes" | "bytes") => a.buckets.reduce((n, b) => n + b[key], 0);

async function counterRows(mesh: string): Promise<{ hour: number; writes: number; bytes: number }[]> {
  const { results } = await meshDb(mesh).prepare(`SELECT hour, writes, bytes FROM mesh_hourly WHERE mesh = ?1 ORDER BY hour`)
    .bind(mesh)
    .all<{ hour: number; writes: number; bytes: number }>();
  return results;
}

/** D1's copy of the hub's counts (hub_writes, hub_bytes) plus D1's own increments (stored files). */
async function copiedRows(mesh: string): Promise<{ hour: number; writes: number; bytes: number }[]> {
  const { results } = await meshDb(mesh).prepare(
    `SELECT hour, writes + hub_writes AS writes, bytes + hub_bytes AS bytes FROM mesh_hourly WHERE mesh = ?1 ORDER BY hour`,
  )
    .bind(mesh)
    .all<{ hour: number; writes: number; bytes: number }>();
  return results;
}

/** Runs the hub's alarm as if its copy were due (the copy waits up to a minute after a write). */
async function runHubCopy(mesh: string): Promise<void> {
  const hub = env.MESH_HUB.get(env.MESH_HUB.idFromName(mesh));
  // Revs are write times: every rev (and the copied mark) moves a minute back, order kept, and the
  // restarted hub reads its oldest uncopied write as a minute old.
  await runInDurableObject(hub, (_instance, state) => {
    state.storage.sql.exec(`UPDATE activity SET rev = rev - 61000`);
    state.storage.sql.exec(`UPDATE meta SET value = value - 61000 WHERE key = 'activity_flushed_rev' AND value > 0`);
  });
  await evictDurableObject(hub);
  await runDurableObjectAlarm(hub);
}

async function seedCounter(mesh: string, hour: number, writes: number, bytes: number): Promise<void> {
  await meshDb(mesh).prepare(`INSERT INTO mesh_hourly (mesh, hour, writes, bytes) VALUES (?1, ?2, ?3, ?4)`).bind(mesh, hour, writes, bytes).run();
}

describe("hourly write counters", () => {
  it("count every write and its bytes in the hour it was written, and the route shows them at once", async () => {
    const mesh = uniqueMesh();
    const before = Math.floor(Date.now() / HOUR);
    for (let i = 0; i < 5; i++) expect((await putFile(target, mesh, `/App/f${i}.bin`, "x".repeat(10 + i))).status).toBe(201);
    const after = Math.floor(Date.now() / HOUR);
    // No D1 statement on the write path: D1 has no counts yet, the hub has all of them.
    expect(await counterRows(mesh)).toEqual([]);
    const a = await activity(mesh);
    expect(sum(a, "writes")).toBe(5);
    expect(sum(a, "bytes")).toBe(10 + 11 + 12 + 13 + 14);
    for (const b of a.buckets.filter((x) => x.writes > 0)) {
      const hour = Date.parse(b.hour) / HOUR;
      expect(hour >= before && hour <= after).toBe(true);
    }
  });

  it("are copied to D1 by the hub's alarm, and a repeated copy counts nothing twice", async () => {
    const mesh = uniqueMesh();
    for (let i = 0; i < 3; i++) expect((await putFile(target, mesh, `/App/c${i}.bin`, "abc")).status).toBe(201);
    await runHubCopy(mesh);
    expect((await copiedRows(mesh)).map((r) => [r.writes, r.bytes])).toEqual([[3, 9]]);
    const usage = await meshDb(mesh).prepare(`SELECT last_write_at FROM mesh_usage WHERE mesh = ?1`).bind(mesh).first<{ last_write_at: number }>();
    expect(usage?.last_write_at).toBeGreaterThan(Date.now() - 60_000);
    // A write after the copy is copied by the next one; copies of unchanged hours change nothing.
    expect((await putFile(target, mesh, "/App/c3.bin", "abcd")).status).toBe(201);
    await runHubCopy(mesh);
    await runHubCopy(mesh);
    expect((await copiedRows(mesh)).map((r) => [r.writes, r.bytes])).toEqual([[4, 13]]);
    expect(sum(await activity(mesh), "writes")).toBe(4);
  });

  it("count a delete as a write of no bytes", async () => {
    const mesh = uniqueMesh();
    expect((await putFile(target, mesh, "/App/gone.bin", "abcd")).status).toBe(201);
    const del = await call(target, `/io/${mesh}/file?path=/App/gone.bin`, { method: "DELETE" });
    expect(del.status).toBe(204);
    const a = await activity(mesh);
    expect(sum(a, "writes")).toBe(2);
    expect(sum(a, "bytes")).toBe(4);
  });

  it("count a stored-file upload with its bytes", async () => {
    const mesh = uniqueMesh();
    const res = await call(target, `/io/${mesh}/stored-file?path=/App/photo.bin`, {
      method: "PUT",
      headers: { "X-Interocitor-Device-Id": "dev-1", "Content-Type": "image/png" },
      body: "p".repeat(25),
    });
    expect(res.status).toBe(201);
    const rows = await counterRows(mesh);
    expect(rows.map((r) => [r.writes, r.bytes])).toEqual([[1, 25]]);
  });
});

describe("GET /sync/admin/meshes/<mesh>/activity", () => {
  it("answers the last 24 hourly buckets oldest first, zeros filled, ending at the current hour", async () => {
    const mesh = uniqueMesh();
    for (let i = 0; i < 3; i++) expect((await putFile(target, mesh, `/App/a${i}.bin`, "yyyyyyy")).status).toBe(201);
    const now = Math.floor(Date.now() / HOUR);
    await seedCounter(mesh, now - 3, 4, 400);
    await seedCounter(mesh, now - 30, 9, 900); // outside the 24 hours
    const a = await activity(mesh);
    expect(a.mesh).toBe(mesh);
    expect(a.hours).toBe(24);
    expect(a.buckets).toHaveLength(24);
    const last = Date.parse(a.buckets[23]!.hour) / HOUR;
    // The request may cross an hour boundary after `now` was read, never before.
    expect(last === now || last === now + 1).toBe(true);
    a.buckets.forEach((b, i) => expect(Date.parse(b.hour)).toBe((last - 23 + i) * HOUR));
    const seeded = a.buckets.find((b) => Date.parse(b.hour) === (now - 3) * HOUR);
    expect(seeded).toEqual({ hour: new Date((now - 3) * HOUR).toISOString(), writes: 4, bytes: 400 });
    expect(sum(a, "writes")).toBe(3 + 4);
    expect(sum(a, "bytes")).toBe(3 * 7 + 400);
    expect(a.buckets.filter((b) => b.writes === 0).length).toBeGreaterThanOrEqual(21);
  });

  it("answers as many buckets as ?hours asks, up to 48", async () => {
    const mesh = uniqueMesh();
    expect((await putFile(target, mesh, "/App/a.bin", "z")).status).toBe(201);
    const now = Math.floor(Date.now() / HOUR);
    await seedCounter(mesh, now - 30, 9, 900);
    const a = await activity(mesh, "?hours=48");
    expect(a.buckets).toHaveLength(48);
    expect(sum(a, "writes")).toBe(1 + 9);
    expect((await activity(mesh, "?hours=1")).buckets).toHaveLength(1);
  });

  it("refuses hours outside 1..48 with 400", async () => {
    const mesh = uniqueMesh();
    expect((await putFile(target, mesh, "/App/a.bin", "z")).status).toBe(201);
    for (const q of ["?hours=0", "?hours=49", "?hours=abc", "?hours=1&hours=2"]) {
      const res = await call(target, `/admin/meshes/${mesh}/activity${q}`, asAdmin());
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toBe("bad_request");
    }
  });

  it("answers 404 no such mesh for a mesh that was never written", async () => {
    const res = await call(target, `/admin/meshes/${uniqueMesh()}/activity`, asAdmin());
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: "not_found", message: "no such mesh" });
  });

  it("needs the admin token (401) and answers 405 to other methods", async () => {
    const mesh = uniqueMesh();
    expect((await call(target, `/admin/meshes/${mesh}/activity`)).status).toBe(401);
    expect((await call(target, `/admin/meshes/${mesh}/activity`, asAdmin({ method: "POST" }))).status).toBe(405);
  });
});

describe("hourly counters' lifetime", () => {
  it("maintenance prunes counters older than 48 hours and keeps newer ones", async () => {
    const mesh = uniqueMesh();
    const now = Math.floor(Date.now() / HOUR);
    await seedCounter(mesh, now - 49, 1, 1);
    await seedCounter(mesh, now - 60, 2, 2);
    await seedCounter(mesh, now - 47, 3, 3);
    const res = await call(target, "/admin/maintenance", asAdmin({ method: "POST" }));
    expect(res.status).toBe(200);
    expect(((await res.json()) as { hourlyBucketsPruned: number }).hourlyBucketsPruned).toBeGreaterThanOrEqual(2);
    expect(await counterRows(mesh)).toEqual([{ hour: now - 47, writes: 3, bytes: 3 }]);
  });

  it("a wipe deletes the mesh's counters, after which the activity route answers 404", async () => {
    const mesh = uniqueMesh();
    expect((await putFile(target, mesh, "/App/a.bin", "abc")).status).toBe(201);
    await runHubCopy(mesh);
    expect((await copiedRows(mesh)).length).toBe(1);
    const wipe = await call(target, `/admin/meshes/${mesh}`, asAdmin({ method: "DELETE" }));
    expect(wipe.status).toBe(200);
    expect(((await wipe.json()) as { complete: boolean }).complete).toBe(true);
    expect(await copiedRows(mesh)).toEqual([]);
    expect((await call(target, `/admin/meshes/${mesh}/activity`, asAdmin())).status).toBe(404);
  });
});
