// The move from the upstream Interocitor Workers runtime: a legacy D1 in the upstream schema
// (UPSTREAM.md) and a legacy R2 bucket, filled with rows shaped like the device simulator's
// objects, migrated through POST /sync/admin/migrate-upstream and then read back as a device does.
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import type { Env } from "../../worker/env";
import { adminEnv, asAdmin, call, changeName, jsonBody, listFiles, uniqueMesh } from "./admin-support";

const target = adminEnv();
const legacyDb = (env as unknown as Env).LEGACY_DB!;
const legacyFiles = (env as unknown as Env).LEGACY_FILES!;
const GUARD = "cd".repeat(32);
const ISO = "2026-12-02T00:57:04.716Z";
const sealed = (n: number) => JSON.stringify({ v: 1, iv: `iv-${n}`, ct: `ct-${n}` });

beforeAll(async () => {
  await legacyDb.batch([
    legacyDb.prepare(`CREATE TABLE IF NOT EXISTS files (prefix TEXT, path TEXT, content BLOB, size INTEGER, modified_time INTEGER, etag TEXT, PRIMARY KEY (prefix, path))`),
    legacyDb.prepare(`CREATE TABLE IF NOT EXISTS folders (prefix TEXT, path TEXT, created_at TEXT)`),
    legacyDb.prepare(
      `CREATE TABLE IF NOT EXISTS stored_files (prefix TEXT, path TEXT, r2_key TEXT, size INTEGER, seal_guard TEXT, uploaded_by_device_id TEXT,
         uploaded_at TEXT, modified_time TEXT, last_accessed_at TEXT, use_count INTEGER, etag TEXT, PRIMARY KEY (prefix, path))`,
    ),
  ]);
});

async function legacyFile(mesh: string, path: string, body: string | Uint8Array, modified = ISO): Promise<void> {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  await legacyDb
    .prepare(`INSERT OR REPLACE INTO files (prefix, path, content, size, modified_time, etag) VALUES (?1, ?2, ?3, ?4, ?5, ?6)`)
    .bind(mesh, path, bytes, bytes.byteLength, modified, `"${crypto.randomUUID()}"`)
    .run();
}

/** A mesh as a device that synced three batches and compacted once leaves it upstream. */
async function seedLegacyMesh(mesh: string, options: { head?: string; dropSnapshot?: boolean } = {}): Promise<void> {
  await legacyFile(mesh, "/MyApp/manifest-1.json", JSON.stringify({ version: 3, meshId: mesh, epoch: 1, snapshotPath: null, encrypted: true }));
  await legacyFile(mesh, "/MyApp/manifest-2.json", JSON.stringify({ version: 3, meshId: mesh, epoch: 2, snapshotPath: "/MyApp/mainline/snapshot-2-dev1.json", encrypted: true }));
  await legacyFile(mesh, "/MyApp/manifest.json", JSON.stringify({ currentGeneration: 2, file: "manifest-2.json" }));
  if (!options.dropSnapshot) await legacyFile(mesh, "/MyApp/mainline/snapshot-2-dev1.json", sealed(0));
  for (let n = 1; n <= 3; n++) await legacyFile(mesh, `/MyApp/changes/${changeName(n)}`, sealed(n), `2026-12-02T00:57:0${n}.000Z`);
  await legacyFile(mesh, "/MyApp/changes/head.json", JSON.stringify({ latestHlc: options.head ?? changeName(3).split("-chg_")[0] }));
  await legacyFile(mesh, "/MyApp/devices/dev1.json", JSON.stringify({ deviceId: "dev1", lastSeen: ISO }));
  // An uncommitted leftover: a compactor wrote generation 3 but never moved the pointer.
  await legacyFile(mesh, "/MyApp/manifest-3.json", JSON.stringify({ version: 3, meshId: mesh, epoch: 3, snapshotPath: null, encrypted: true }));
  const key = `meshes/${encodeURIComponent(mesh)}/files/${encodeURIComponent("MyApp/files/photo.bin")}`;
  await legacyFiles.put(key, new Uint8Array([1, 2, 3, 4, 5]));
  await legacyDb
    .prepare(
      `INSERT OR REPLACE INTO stored_files (prefix, path, r2_key, size, seal_guard, uploaded_by_device_id, uploaded_at, modified_time, last_accessed_at, use_count, etag)
       VALUES (?1, '/MyApp/files/photo.bin', ?2, 5, ?3, 'dev1', ?4, ?4, NULL, 2, '"x"')`,
    )
    .bind(mesh, key, GUARD, ISO)
    .run();
}

async function migrate(body: unknown): Promise<{ status: number; json: any }> {
  const res = await call(target, "/admin/migrate-upstream", asAdmin({ method: "POST", ...jsonBody(body) }));
  return { status: res.status, json: await res.json() };
}

const get = (mesh: string, path: string) => call(target, `/io/${mesh}/file?path=${encodeURIComponent(path)}`);

describe("POST /sync/admin/migrate-upstream", () => {
  it("moves a mesh with its bytes and modified times so a device reads it without re-bootstrapping", async () => {
    const mesh = uniqueMesh();
    await seedLegacyMesh(mesh);
    const { status, json } = await migrate({ mesh });
    expect(status).toBe(200);
    expect(json.nextCursor).toBeNull();
    expect(json.meshes).toEqual([
      {
        mesh,
        status: "moved",
        controlObjects: 5,
        objects: 4,
        storedFiles: 1,
        bytes: expect.any(Number),
        reasons: [],
        skipped: [{ path: "/MyApp/manifest-3.json", reason: expect.stringContaining("uncommitted generation") }],
      },
    ]);
    const pointer = await get(mesh, "/MyApp/manifest.json");
    expect(pointer.status).toBe(200);
    expect(await pointer.text()).toBe(JSON.stringify({ currentGeneration: 2, file: "manifest-2.json" }));
    expect(await (await get(mesh, "/MyApp/changes/head.json")).json()).toEqual({ latestHlc: changeName(3).split("-chg_")[0] });
    const changes = await listFiles(target, mesh, "/MyApp/changes");
    expect(changes.map((f) => f.name).sort()).toEqual([changeName(1), changeName(2), changeName(3), "head.json"].sort());
    const change = await get(mesh, `/MyApp/changes/${changeName(2)}`);
    expect(await change.text()).toBe(sealed(2));
    expect(await (await get(mesh, "/MyApp/mainline/snapshot-2-dev1.json")).text()).toBe(sealed(0));
    expect((await get(mesh, "/MyApp/manifest-3.json")).status).toBe(404);
    const meta = await call(target, `/io/${mesh}/metadata`, { method: "POST", ...jsonBody({ path: `/MyApp/changes/${changeName(2)}` }) });
    expect(((await meta.json()) as { file: { modifiedTime: string } }).file.modifiedTime).toBe("2026-12-02T00:57:02.000Z");
    // A re-bootstrapping device would write generation 1 again: the committed generation 2 refuses it.
    const reboot = await call(target, `/io/${mesh}/file?path=${encodeURIComponent("/MyApp/manifest.json")}`, {
      method: "PUT",
      body: JSON.stringify({ currentGeneration: 1, file: "manifest-1.json" }),
    });
    expect(reboot.status).toBe(409);
    const stored = await call(target, `/io/${mesh}/stored-file?path=${encodeURIComponent("/MyApp/files/photo.bin")}`);
    expect(stored.status).toBe(200);
    expect(new Uint8Array(await stored.arrayBuffer())).toEqual(new Uint8Array([1, 2, 3, 4, 5]));
    // Still sealed by upstream's guard: refused without it, deleted by the device that holds it.
    const storedUrl = `/io/${mesh}/stored-file?path=${encodeURIComponent("/MyApp/files/photo.bin")}`;
    const unguarded = await call(target, storedUrl, { method: "DELETE" });
    expect(unguarded.status).toBe(403);
    await unguarded.arrayBuffer();
    const guarded = await call(target, storedUrl, { method: "DELETE", headers: { "X-Interocitor-Seal-Guard": GUARD.toUpperCase() } });
    expect(guarded.status).toBe(204);
    await guarded.arrayBuffer();
  });

  it("refuses a mesh whose stored file lost its body or has a guard meshbox cannot check, before writing anything", async () => {
    const noBody = uniqueMesh();
    const badGuard = uniqueMesh();
    await seedLegacyMesh(noBody);
    await seedLegacyMesh(badGuard);
    await legacyFiles.delete(`meshes/${encodeURIComponent(noBody)}/files/${encodeURIComponent("MyApp/files/photo.bin")}`);
    await legacyDb.prepare(`UPDATE stored_files SET seal_guard = 'not-a-guard' WHERE prefix = ?1`).bind(badGuard).run();
    const dry = await migrate({ mesh: noBody, dryRun: true });
    expect(dry.json.meshes[0]).toMatchObject({
      status: "refused",
      reasons: [`The stored file /MyApp/files/photo.bin has no body at meshes/${encodeURIComponent(noBody)}/files/${encodeURIComponent("MyApp/files/photo.bin")} in the legacy bucket.`],
    });
    const bad = await migrate({ mesh: badGuard });
    expect(bad.json.meshes[0]).toMatchObject({
      status: "refused",
      reasons: ["The stored file /MyApp/files/photo.bin has a seal guard that is not 64 hex characters; moving it would unseal it."],
    });
    expect((await get(badGuard, "/MyApp/manifest.json")).status).toBe(404);
  });

  it("is idempotent: a second run reports the mesh as already present and changes nothing", async () => {
    const mesh = uniqueMesh();
    await seedLegacyMesh(mesh);
    expect((await migrate({ mesh })).json.meshes[0].status).toBe("moved");
    const before = await listFiles(target, mesh, "/MyApp/changes");
    const again = await migrate({ mesh });
    expect(again.status).toBe(200);
    expect(again.json.meshes[0]).toMatchObject({ mesh, status: "already-present", reasons: [] });
    expect(await listFiles(target, mesh, "/MyApp/changes")).toEqual(before);
  });

  it("changes nothing on a dry run and reports what would move", async () => {
    const mesh = uniqueMesh();
    await seedLegacyMesh(mesh);
    const { status, json } = await migrate({ mesh, dryRun: true });
    expect(status).toBe(200);
    expect(json.dryRun).toBe(true);
    expect(json.meshes[0]).toMatchObject({ mesh, status: "would-move", controlObjects: 5, objects: 4, storedFiles: 1 });
    expect((await get(mesh, "/MyApp/manifest.json")).status).toBe(404);
  });

  it("reports a refused mesh (low head.json, missing snapshot) while the others of the page run move", async () => {
    const good = uniqueMesh();
    const lowHead = uniqueMesh();
    const noSnapshot = uniqueMesh();
    await seedLegacyMesh(good);
    await seedLegacyMesh(lowHead, { head: "000000000000000" });
    await seedLegacyMesh(noSnapshot, { dropSnapshot: true });
    const reports = new Map<string, any>();
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const { status, json } = await migrate({ all: true, ...(cursor ? { cursor } : {}) });
      expect(status).toBe(200);
      for (const r of json.meshes) reports.set(r.mesh, r);
      if (json.nextCursor === null) break;
      cursor = json.nextCursor;
    }
    expect(reports.get(good).status).toBe("moved");
    expect(reports.get(lowHead)).toMatchObject({ status: "refused", reasons: [expect.stringContaining("lower than the newest change file")] });
    // The refused root's generation files are not reported as uncommitted leftovers besides.
    expect(reports.get(noSnapshot)).toMatchObject({ status: "refused", reasons: [expect.stringContaining("which is missing")], skipped: [] });
    expect((await get(lowHead, "/MyApp/manifest.json")).status).toBe(404);
    expect((await get(good, "/MyApp/manifest.json")).status).toBe(200);
  });

  it("refuses a mesh the legacy database holds nothing of, instead of reporting it moved", async () => {
    const mesh = uniqueMesh();
    const { status, json } = await migrate({ mesh });
    expect(status).toBe(200);
    expect(json.meshes).toEqual([
      { mesh, status: "refused", controlObjects: 0, objects: 0, storedFiles: 0, bytes: 0, reasons: ["The legacy database holds nothing for this mesh."], skipped: [] },
    ]);
    expect((await call(target, `/admin/meshes/${mesh}`, asAdmin())).status).toBe(404);
  });

  it("answers 503 with a clear message when the legacy bindings are not configured", async () => {
    const bare = adminEnv({ LEGACY_DB: undefined, LEGACY_FILES: undefined });
    const res = await call(bare, "/admin/migrate-upstream", asAdmin({ method: "POST", ...jsonBody({ all: true }) }));
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ error: "unavailable", message: expect.stringContaining("LEGACY_DB") });
  });

  it("answers 405 for GET, 401 without the admin bearer and 400 for neither mesh nor all", async () => {
    expect((await call(target, "/admin/migrate-upstream", asAdmin())).status).toBe(405);
    expect((await call(target, "/admin/migrate-upstream", { method: "POST", ...jsonBody({ all: true }) })).status).toBe(401);
    const res = await call(target, "/admin/migrate-upstream", asAdmin({ method: "POST", ...jsonBody({}) }));
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: "bad_request", message: "Give exactly one of mesh or all." });
  });
});
