import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../worker/index";
import type { Env } from "../../worker/env";
import type { MaintenanceReport } from "../../worker/routes/maintenance";
import { markEvicted } from "../../worker/operations/maintenance";
import { readEvictionRecord } from "../../worker/objects/eviction";
import { forgetWriteTouch } from "../../worker/objects/usage";
import { adminEnv, asAdmin, bootstrapRoot, call, changeName, listFiles, putFile, uniqueMesh } from "./admin-support";
import { meshDb } from "./io-support";

const DAY = 86_400_000;
const open = adminEnv();
const withIdle = adminEnv({ IDLE_MESH_TTL_DAYS: "30" });

afterEach(() => {
  vi.restoreAllMocks();
});

/** Runs the worker's scheduled export once; returns the one JSON line it logged. */
async function runCron(target: Env, scheduledTime = Date.now()): Promise<MaintenanceReport & { level: string; msg: string }> {
  const log = vi.spyOn(console, "log").mockImplementation(() => {});
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ scheduledTime, cron: "*/5 * * * *" }), target, ctx);
  await waitOnExecutionContext(ctx);
  const lines = log.mock.calls
    .map((args) => String(args[0]))
    .filter((line) => line.startsWith("{") && (JSON.parse(line) as { msg?: string }).msg === "maintenance");
  log.mockRestore();
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]!);
}

async function usage(mesh: string) {
  return meshDb(mesh).prepare("SELECT * FROM mesh_usage WHERE mesh = ?").bind(mesh).first<{
    last_write_at: number | null;
    evicted_at: number | null;
    evicted_roots: string | null;
    stored_bytes: number;
  }>();
}

/** As if the mesh's last write were `days` old: in D1, and in this isolate's memory of its touches. */
async function ageMesh(mesh: string, days: number): Promise<number> {
  const at = Date.now() - days * DAY;
  await meshDb(mesh).prepare("UPDATE mesh_usage SET last_write_at = ? WHERE mesh = ?").bind(at, mesh).run();
  forgetWriteTouch(mesh);
  return at;
}

async function getFile(target: Env, mesh: string, path: string) {
  return call(target, `/io/${mesh}/file?path=${encodeURIComponent(path)}`);
}

describe("scheduled (cron)", () => {
  it("logs one JSON line of what the run did", async () => {
    const line = await runCron(open, Date.parse("2026-11-01T00:00:00Z"));
    expect(line).toMatchObject({
      level: "info",
      msg: "maintenance",
      trigger: "cron",
      cron: "*/5 * * * *",
      at: "2026-11-01T00:00:00.000Z",
      sessionsDeleted: expect.any(Number),
      tombstonesPurged: expect.any(Number),
      idleCleanup: { enabled: false },
      reconciled: expect.any(Array),
      errors: [],
      ms: expect.any(Number),
    });
  });

  it("deletes expired sessions and keeps live ones", async () => {
    const expired = crypto.randomUUID();
    const live = crypto.randomUUID();
    const now = Date.now();
    const insert = env.DB.prepare(
      `INSERT INTO sessions (jti, key_id, subject, mesh_pattern, scope, issued_at, expires_at, revoked_at)
       VALUES (?, 'k', 's', '*', 'full', ?, ?, NULL)`,
    );
    await env.DB.batch([insert.bind(expired, now - 2 * DAY, now - DAY), insert.bind(live, now, now + DAY)]);
    const line = await runCron(open, now);
    expect(line.sessionsDeleted).toBeGreaterThanOrEqual(1);
    const left = await env.DB.prepare("SELECT jti FROM sessions WHERE jti IN (?, ?)").bind(expired, live).all<{ jti: string }>();
    expect(left.results.map((r) => r.jti)).toEqual([live]);
  });

  it("purges the R2 body of a deleted change file once its grace has run out", async () => {
    const mesh = uniqueMesh();
    const path = `/App/changes/${changeName(1)}`;
    expect((await putFile(open, mesh, path, "covered")).status).toBe(201);
    expect((await call(open, `/io/${mesh}/file?path=${path}`, { method: "DELETE" })).status).toBe(204);
    expect(await env.BUCKET.head(`m/${mesh}${path}`)).not.toBeNull();
    await meshDb(mesh).prepare("UPDATE objects SET deleted_at = ? WHERE mesh = ? AND path = ?").bind(Date.now() - DAY, mesh, path).run();

    const line = await runCron(open);
    expect(line.tombstonesPurged).toBeGreaterThanOrEqual(1);
    expect(await env.BUCKET.head(`m/${mesh}${path}`)).toBeNull();
    expect((await getFile(open, mesh, path)).status).toBe(404);
  });

  it("leaves idle meshes alone when IDLE_MESH_TTL_DAYS is not set", async () => {
    const mesh = uniqueMesh();
    await bootstrapRoot(open, mesh, "/App");
    await ageMesh(mesh, 400);
    const line = await runCron(open);
    expect(line.idleCleanup).toEqual({ enabled: false });
    expect((await getFile(open, mesh, "/App/manifest.json")).status).toBe(200);
    expect((await usage(mesh))?.evicted_at).toBeNull();
  });

  it("evicts a mesh idle past IDLE_MESH_TTL_DAYS; <root>/evicted.json then answers a record synthesized from D1", async () => {
    const mesh = uniqueMesh();
    await bootstrapRoot(withIdle, mesh, "/App");
    await bootstrapRoot(withIdle, mesh, "/Notes");
    const change = `/App/changes/${changeName(1)}`;
    expect((await putFile(withIdle, mesh, change, "data")).status).toBe(201);
    const stored = await call(withIdle, `/io/${mesh}/stored-file?path=/App/files/photo`, {
      method: "PUT",
      headers: { "Content-Type": "image/jpeg", "X-Interocitor-Device-Id": "dev1" },
      body: "jpeg",
    });
    expect(stored.status).toBe(201);
    const lastWrite = await ageMesh(mesh, 31);
    const now = Date.now();

    const line = await runCron(withIdle, now);
    expect(line.idleCleanup).toMatchObject({ enabled: true, ttlDays: 30 });
    const evicted = line.idleCleanup.enabled ? line.idleCleanup.evicted.find((e) => e.mesh === mesh) : undefined;
    expect(evicted).toEqual({
      mesh,
      roots: ["/App", "/Notes"],
      r2Objects: 2,
      indexRows: expect.any(Number),
      controlObjects: 4,
      complete: true,
      recorded: true,
    });

    // The data is gone: R2, index, hub.
    expect((await env.BUCKET.list({ prefix: `m/${mesh}/` })).objects).toEqual([]);
    expect((await env.BUCKET.list({ prefix: `f/${mesh}/` })).objects).toEqual([]);
    expect((await call(withIdle, `/io/${mesh}/stored-file?path=/App/files/photo`)).status).toBe(404);
    const rows = await meshDb(mesh).prepare("SELECT count(*) AS n FROM objects WHERE mesh = ?").bind(mesh).first<{ n: number }>();
    expect(rows?.n).toBe(0);
    expect((await getFile(withIdle, mesh, "/App/manifest.json")).status).toBe(404);
    expect(await usage(mesh)).toMatchObject({
      evicted_at: now,
      evicted_roots: JSON.stringify(["/App", "/Notes"]),
      last_write_at: lastWrite,
      stored_bytes: 0,
    });

    // The record: served for each root, never stored as an object.
    const res = await getFile(withIdle, mesh, "/App/evicted.json");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      evicted: true,
      reason: "idle",
      mesh,
      root: "/App",
      evictedAt: new Date(now).toISOString(),
      lastWriteAt: new Date(lastWrite).toISOString(),
      message: expect.stringContaining("without writes"),
    });
    expect((await getFile(withIdle, mesh, "/Notes/evicted.json")).status).toBe(200);
    expect((await getFile(withIdle, mesh, "/Elsewhere/evicted.json")).status).toBe(404);
    expect(await env.BUCKET.head(`m/${mesh}/App/evicted.json`)).toBeNull();
    expect(await listFiles(withIdle, mesh, "/App")).toEqual([]);

    // Admin stats say so too.
    const stats = (await (await call(withIdle, `/admin/meshes/${mesh}`, asAdmin())).json()) as Record<string, unknown>;
    expect(stats).toMatchObject({ evictedAt: new Date(now).toISOString(), evictedRoots: ["/App", "/Notes"], objects: 0, storedFiles: 0 });

    // A new write brings the mesh back to life: the record disappears and the mesh is not re-evicted.
    await bootstrapRoot(withIdle, mesh, "/App");
    expect((await getFile(withIdle, mesh, "/App/evicted.json")).status).toBe(404);
    const again = await runCron(withIdle);
    expect(again.idleCleanup.enabled && again.idleCleanup.evicted.some((e) => e.mesh === mesh)).toBe(false);
    expect((await getFile(withIdle, mesh, "/App/manifest.json")).status).toBe(200);
  });

  it("does not evict a mesh written within the TTL", async () => {
    const mesh = uniqueMesh();
    await bootstrapRoot(withIdle, mesh, "/App");
    await ageMesh(mesh, 29);
    const line = await runCron(withIdle);
    expect(line.idleCleanup.enabled && line.idleCleanup.evicted.some((e) => e.mesh === mesh)).toBe(false);
    expect((await getFile(withIdle, mesh, "/App/manifest.json")).status).toBe(200);
  });

  it("reconciles the index of sampled meshes", async () => {
    const mesh = uniqueMesh();
    const path = `/App/changes/${changeName(5)}`;
    expect((await putFile(open, mesh, path, "x")).status).toBe(201);
    await meshDb(mesh).prepare("DELETE FROM objects WHERE mesh = ? AND path = ?").bind(mesh, path).run();

    // Sampling is random over this file's meshes: run until ours is picked, boundedly.
    let repaired = false;
    for (let run = 0; run < 40 && !repaired; run++) {
      const line = await runCron(open);
      expect(line.reconciled.length).toBeLessThanOrEqual(3);
      repaired = line.reconciled.some((r) => r.mesh === mesh && r.added === 1);
    }
    expect(repaired).toBe(true);
    expect((await listFiles(open, mesh, "/App/changes")).map((f) => f.name)).toEqual([changeName(5)]);
  });
});

describe("maintenance robustness", () => {
  it("keeps going when one task fails, reports the failure, and logs at warn", async () => {
    const expired = crypto.randomUUID();
    await env.DB.prepare(
      `INSERT INTO sessions (jti, key_id, subject, mesh_pattern, scope, issued_at, expires_at, revoked_at)
       VALUES (?, 'k', 's', '*', 'full', 1, 2, NULL)`,
    )
      .bind(expired)
      .run();
    const mesh = uniqueMesh();
    await bootstrapRoot(withIdle, mesh, "/App");
    await ageMesh(mesh, 90);
    // The real bucket, except that listing fails: idle cleanup of this mesh cannot proceed.
    const failingBucket = new Proxy(env.BUCKET, {
      get(bucket, prop) {
        if (prop === "list") return () => Promise.reject(new Error("R2 list is down"));
        const value = Reflect.get(bucket, prop) as unknown;
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(bucket) : value;
      },
    });
    const line = await runCron({ ...withIdle, BUCKET: failingBucket } as Env);
    expect(line.level).toBe("warn");
    expect(line.sessionsDeleted).toBeGreaterThanOrEqual(1);
    expect(line.errors).toContainEqual({ task: `idle-cleanup ${mesh}`, error: "Error: R2 list is down" });
    expect((await usage(mesh))?.evicted_at).toBeNull();
    // Nothing of the mesh was wiped, so a later healthy run can evict it cleanly.
    expect((await getFile(withIdle, mesh, "/App/manifest.json")).status).toBe(200);
  });

  it("records no eviction when the mesh was written after it was found idle", async () => {
    const mesh = uniqueMesh();
    await bootstrapRoot(open, mesh, "/App");
    const seen = await ageMesh(mesh, 90);
    await bootstrapRoot(open, mesh, "/Other");
    expect(await markEvicted(meshDb(mesh), mesh, seen, Date.now(), ["/App"])).toBe(false);
    expect((await usage(mesh))?.evicted_at).toBeNull();
    expect(await readEvictionRecord(open, mesh, "/App/evicted.json")).toBeNull();
  });

  it("answers the eviction record only for evicted.json under a recorded root or the mesh root", async () => {
    const mesh = uniqueMesh();
    await bootstrapRoot(open, mesh, "/App");
    const seen = await ageMesh(mesh, 90);
    expect(await markEvicted(meshDb(mesh), mesh, seen, Date.now(), ["/App"])).toBe(true);
    expect(await readEvictionRecord(open, mesh, "/App/evicted.json")).not.toBeNull();
    expect(await readEvictionRecord(open, mesh, "/evicted.json")).not.toBeNull();
    expect(await readEvictionRecord(open, mesh, "/App/manifest.json")).toBeNull();
    expect(await readEvictionRecord(open, mesh, "/App/sub/evicted.json")).toBeNull();
    expect(await readEvictionRecord(open, uniqueMesh(), "/App/evicted.json")).toBeNull();
  });
});

describe("POST /sync/admin/maintenance", () => {
  it("runs the cron work now and answers what it did", async () => {
    const mesh = uniqueMesh();
    await bootstrapRoot(withIdle, mesh, "/App");
    await ageMesh(mesh, 60);
    const res = await call(withIdle, "/admin/maintenance", asAdmin({ method: "POST" }));
    expect(res.status).toBe(200);
    const report = (await res.json()) as MaintenanceReport;
    expect(report).toMatchObject({
      trigger: "admin",
      cron: null,
      sessionsDeleted: expect.any(Number),
      tombstonesPurged: expect.any(Number),
      idleCleanup: { enabled: true, ttlDays: 30 },
      errors: [],
    });
    expect(report.idleCleanup.enabled && report.idleCleanup.evicted.map((e) => e.mesh)).toContain(mesh);
    expect((await getFile(withIdle, mesh, "/App/evicted.json")).status).toBe(200);
  });

  it("needs the admin token", async () => {
    const res = await call(withIdle, "/admin/maintenance", { method: "POST" });
    expect(res.status).toBe(401);
  });
});
