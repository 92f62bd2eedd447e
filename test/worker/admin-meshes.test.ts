import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { reconcileMesh as reconcileIndex } from "../../worker/operations/reconcile";
import { adminEnv, asAdmin, bootstrapRoot, call, changeName, listFiles, putFile, uniqueMesh } from "./admin-support";
import { meshDb } from "./io-support";

const target = adminEnv();

interface Stats {
  mesh: string;
  objects: number;
  bytes: number;
  tombstones: number;
  storedFiles: number;
  storedBytes: number;
  lastWriteAt: string | null;
  lastReadAt: string | null;
  evictedAt: string | null;
  evictedRoots: string[];
  hub: { connected: number; seq: number; currentGeneration: number | null; controlObjects: number; controlBytes: number };
}

async function stats(mesh: string): Promise<Stats> {
  const res = await call(target, `/admin/meshes/${mesh}`, asAdmin());
  expect(res.status).toBe(200);
  return (await res.json()) as Stats;
}

async function putStored(mesh: string, path: string, body: string): Promise<void> {
  const res = await call(target, `/io/${mesh}/stored-file?path=${encodeURIComponent(path)}`, {
    method: "PUT",
    headers: { "Content-Type": "application/octet-stream", "X-Interocitor-Device-Id": "dev1" },
    body,
  });
  expect(res.status).toBe(201);
}

async function r2Keys(prefix: string): Promise<string[]> {
  return (await env.BUCKET.list({ prefix })).objects.map((o) => o.key);
}

describe("GET /sync/admin/meshes/:mesh", () => {
  it("answers 404 no such mesh for a mesh that never stored anything, so a typo is not read as an empty mesh", async () => {
    const res = await call(target, `/admin/meshes/${uniqueMesh()}`, asAdmin());
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: "not_found", message: "no such mesh" });
  });

  it("counts indexed R2 objects and bytes, stored files, the last write, and the hub's generation and control objects", async () => {
    const mesh = uniqueMesh();
    await bootstrapRoot(target, mesh, "/App");
    expect((await putFile(target, mesh, `/App/changes/${changeName(1)}`, "12345")).status).toBe(201);
    expect((await putFile(target, mesh, "/App/other.bin", "abc")).status).toBe(201);
    await putStored(mesh, "/App/files/photo", "0123456789");

    const s = await stats(mesh);
    const indexed = await meshDb(mesh).prepare(
      "SELECT count(*) AS n, sum(size) AS b FROM objects WHERE mesh = ? AND deleted_at IS NULL",
    )
      .bind(mesh)
      .first<{ n: number; b: number }>();
    // The index holds the R2 objects; the control objects are the hub's alone.
    expect(s.objects).toBe(2);
    expect(s.objects).toBe(indexed?.n);
    expect(s.bytes).toBe(indexed?.b);
    expect(s.storedFiles).toBe(1);
    expect(s.storedBytes).toBe(10);
    expect(Date.parse(s.lastWriteAt ?? "")).toBeGreaterThan(Date.now() - 60_000);
    expect(s.hub.currentGeneration).toBe(1);
    expect(s.hub.controlObjects).toBe(2);
  });

  it("answers 400 invalid_mesh_id for a malformed mesh id", async () => {
    const res = await call(target, "/admin/meshes/-bad", asAdmin());
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "invalid_mesh_id" });
  });
});

describe("DELETE /sync/admin/meshes/:mesh", () => {
  it("wipes R2 bodies, stored files, the index, folder marks, usage and the hub's control objects", async () => {
    const mesh = uniqueMesh();
    const bystander = uniqueMesh();
    await bootstrapRoot(target, mesh, "/App");
    await bootstrapRoot(target, bystander, "/App");
    expect((await putFile(target, mesh, `/App/changes/${changeName(1)}`, "x")).status).toBe(201);
    expect((await putFile(target, bystander, `/App/changes/${changeName(1)}`, "y")).status).toBe(201);
    await putStored(mesh, "/App/files/a", "aaaa");
    expect(await listFiles(target, mesh, "/App/changes")).toHaveLength(1);

    const res = await call(target, `/admin/meshes/${mesh}`, asAdmin({ method: "DELETE" }));
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ mesh, complete: true, r2Objects: 2, storedFiles: 1, hub: { controlObjects: 2 } });
    expect(body.indexRows).toBeGreaterThanOrEqual(1);

    expect(await r2Keys(`m/${mesh}/`)).toEqual([]);
    expect(await r2Keys(`f/${mesh}/`)).toEqual([]);
    for (const table of ["objects", "indexed_folders", "stored_files", "mesh_usage"]) {
      const row = await meshDb(mesh).prepare(`SELECT count(*) AS n FROM ${table} WHERE mesh = ?`).bind(mesh).first<{ n: number }>();
      expect(row?.n, table).toBe(0);
    }
    // Wiped means gone: the admin API no longer knows the mesh.
    expect((await call(target, `/admin/meshes/${mesh}`, asAdmin())).status).toBe(404);
    expect(await listFiles(target, mesh, "/App/changes")).toEqual([]);
    const manifest = await call(target, `/io/${mesh}/file?path=/App/manifest.json`);
    expect(manifest.status).toBe(404);

    // Another mesh is untouched.
    expect(await listFiles(target, bystander, "/App/changes")).toHaveLength(1);
    expect((await stats(bystander)).hub.controlObjects).toBe(2);
  });

  it("lets the mesh start over from scratch after a wipe", async () => {
    const mesh = uniqueMesh();
    await bootstrapRoot(target, mesh, "/App");
    expect((await call(target, `/admin/meshes/${mesh}`, asAdmin({ method: "DELETE" }))).status).toBe(200);
    await bootstrapRoot(target, mesh, "/App");
    expect((await stats(mesh)).hub.currentGeneration).toBe(1);
  });

  it("answers 404 no such mesh for a mesh that holds nothing, and wipes nothing", async () => {
    const res = await call(target, `/admin/meshes/${uniqueMesh()}`, asAdmin({ method: "DELETE" }));
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: "not_found", message: "no such mesh" });
  });

  it("with dryRun=1 reports what a wipe would remove and removes nothing", async () => {
    const mesh = uniqueMesh();
    await bootstrapRoot(target, mesh, "/App");
    expect((await putFile(target, mesh, `/App/changes/${changeName(1)}`, "x")).status).toBe(201);
    await putStored(mesh, "/App/files/a", "aaaa");
    const res = await call(target, `/admin/meshes/${mesh}?dryRun=1`, asAdmin({ method: "DELETE" }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      mesh,
      dryRun: true,
      wouldRemove: { indexRows: 1, storedFiles: 1, controlObjects: 2, sockets: 0 },
    });
    expect(await listFiles(target, mesh, "/App/changes")).toHaveLength(1);
    expect(await r2Keys(`f/${mesh}/`)).toHaveLength(1);
    expect((await call(target, `/io/${mesh}/file?path=/App/manifest.json`)).status).toBe(200);
  });
});

describe("POST /sync/admin/meshes/:mesh/reconcile", () => {
  async function reconcile(mesh: string) {
    const res = await call(target, `/admin/meshes/${mesh}/reconcile`, asAdmin({ method: "POST" }));
    expect(res.status).toBe(200);
    return (await res.json()) as Record<string, unknown>;
  }

  it("reports nothing to do for a consistent index", async () => {
    const mesh = uniqueMesh();
    await bootstrapRoot(target, mesh, "/App");
    expect((await putFile(target, mesh, `/App/changes/${changeName(1)}`, "one")).status).toBe(201);
    expect(await reconcile(mesh)).toEqual({
      mesh,
      scanned: { r2: 1, hub: 2, heads: 0 },
      added: 0,
      tombstoned: 0,
      fixed: 0,
      complete: true,
      resumeAfter: null,
    });
  });

  it("repairs a broken index: adds missing rows, tombstones rows of deleted objects, fixes drifted size and etag", async () => {
    const mesh = uniqueMesh();
    await bootstrapRoot(target, mesh, "/App");
    const kept = `/App/changes/${changeName(1)}`;
    const unindexed = `/App/changes/${changeName(2)}`;
    const vanished = `/App/changes/${changeName(3)}`;
    const drifted = "/App/other.bin";
    for (const path of [kept, vanished, drifted]) expect((await putFile(target, mesh, path, "body")).status).toBe(201);
    expect((await listFiles(target, mesh, "/App/changes")).map((f) => f.name).sort()).toEqual(
      [changeName(1), changeName(3)].sort(),
    );

    // Break it: a body R2 holds that the index lacks, an index row whose body is gone, and a row
    // whose size and etag no longer match R2.
    await env.BUCKET.put(`m/${mesh}${unindexed}`, "late body", {
      customMetadata: { path: unindexed, class: "change", modified: String(Date.now()) },
    });
    await env.BUCKET.delete(`m/${mesh}${vanished}`);
    await meshDb(mesh).prepare("UPDATE objects SET size = 999, etag = '\"stale\"' WHERE mesh = ? AND path = ?").bind(mesh, drifted).run();

    const report = await reconcile(mesh);
    expect(report).toEqual({
      mesh,
      scanned: { r2: 3, hub: 2, heads: 1 },
      added: 1,
      tombstoned: 1,
      fixed: 1,
      complete: true,
      resumeAfter: null,
    });

    const files = await listFiles(target, mesh, "/App/changes");
    expect(files.map((f) => f.name).sort()).toEqual([changeName(1), changeName(2)].sort());
    expect(files.find((f) => f.name === changeName(2))?.size).toBe("late body".length);
    const head = await env.BUCKET.head(`m/${mesh}${drifted}`);
    const other = (await listFiles(target, mesh, "/App")).find((f) => f.name === "other.bin");
    expect(other).toMatchObject({ size: 4, etag: head?.httpEtag });
    const meta = await call(target, `/io/${mesh}/metadata`, { method: "POST", body: JSON.stringify({ path: "/App/manifest.json" }) });
    expect(meta.status).toBe(200);

    // A second run finds nothing left to repair.
    expect(await reconcile(mesh)).toMatchObject({ added: 0, tombstoned: 0, fixed: 0, complete: true });
  });

  it("drops index rows left from when control objects were indexed, which no read ever served", async () => {
    const mesh = uniqueMesh();
    await bootstrapRoot(target, mesh, "/App");
    await meshDb(mesh).prepare(
      `INSERT INTO objects (mesh, path, parent, name, size, etag, modified_at, class, location, version, deleted_at)
       VALUES (?, '/App/devices/ghost.json', '/App/devices', 'ghost.json', 3, '"g"', 1, 'device', 'hub', 1, NULL)`,
    )
      .bind(mesh)
      .run();
    const meta = await call(target, `/io/${mesh}/metadata`, { method: "POST", body: JSON.stringify({ path: "/App/devices/ghost.json" }) });
    expect(meta.status).toBe(404);
    const folders = await call(target, `/io/${mesh}/list-folders`, { method: "POST", body: JSON.stringify({ path: "/App" }) });
    expect(((await folders.json()) as { folders: string[] }).folders).not.toContain("devices");
    expect(await reconcile(mesh)).toMatchObject({ added: 0, tombstoned: 0, fixed: 1 });
    const left = await meshDb(mesh).prepare(`SELECT count(*) AS n FROM objects WHERE mesh = ? AND location = 'hub'`).bind(mesh).first<{ n: number }>();
    expect(left?.n).toBe(0);
  });

  it("leaves a deleted change file in its grace period deleted", async () => {
    const mesh = uniqueMesh();
    await bootstrapRoot(target, mesh, "/App");
    const path = `/App/changes/${changeName(7)}`;
    expect((await putFile(target, mesh, path, "covered")).status).toBe(201);
    expect((await call(target, `/io/${mesh}/file?path=${path}`, { method: "DELETE" })).status).toBe(204);
    expect(await env.BUCKET.head(`m/${mesh}${path}`)).not.toBeNull();
    expect(await reconcile(mesh)).toMatchObject({ added: 0, tombstoned: 0, fixed: 0 });
    // Still deleted: listed only through its listing window, never revived as live.
    expect((await listFiles(target, mesh, "/App/changes")).map((f) => f.name)).toEqual([path.slice("/App/changes/".length)]);
    expect((await call(target, `/io/${mesh}/file?path=${path}`, { method: "DELETE" })).status).toBe(404);
  });

  it("resumes after a path: only objects past startAfter are compared", async () => {
    const mesh = uniqueMesh();
    const early = "/App/a-early.bin";
    const late = "/App/z-late.bin";
    for (const path of [early, late]) {
      await env.BUCKET.put(`m/${mesh}${path}`, "body", { customMetadata: { path, class: "other", modified: "1" } });
    }
    const res = await call(target, `/admin/meshes/${mesh}/reconcile`, asAdmin({ method: "POST", body: JSON.stringify({ startAfter: "/App/m" }) }));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ scanned: { r2: 1 }, added: 1, complete: true, resumeAfter: null });
    // D1 directly: a listing would read-through-fill the unindexed folder from R2.
    const rows = await meshDb(mesh).prepare("SELECT path FROM objects WHERE mesh = ?").bind(mesh).all<{ path: string }>();
    expect(rows.results.map((r) => r.path)).toEqual([late]);
  });

  it("answers 400 for a startAfter that is not a path", async () => {
    for (const body of [{ startAfter: 5 }, { startAfter: "/App/../x" }]) {
      const res = await call(target, `/admin/meshes/${uniqueMesh()}/reconcile`, asAdmin({ method: "POST", body: JSON.stringify(body) }));
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    const garbage = await call(target, `/admin/meshes/${uniqueMesh()}/reconcile`, asAdmin({ method: "POST", body: "[1]" }));
    expect(garbage.status).toBe(400);
  });

  it("stops at its page budget with resumeAfter, and a resumed run finishes the job", async () => {
    const mesh = uniqueMesh();
    const paths = Array.from({ length: 1001 }, (_, i) => `/App/bulk/${String(i).padStart(4, "0")}.bin`);
    for (let i = 0; i < paths.length; i += 100) {
      await Promise.all(
        paths.slice(i, i + 100).map((path) => env.BUCKET.put(`m/${mesh}${path}`, "b", { customMetadata: { path, class: "other", modified: "1" } })),
      );
    }
    // R2 pages hold at most 1000 keys (fewer when metadata is included), so one page never covers it.
    const first = await reconcileIndex(target, mesh, { deadline: Date.now() + 60_000, maxPages: 1 });
    expect(first.complete).toBe(false);
    expect(first.resumeAfter).toBe(paths[first.added - 1]);
    let added = first.added;
    let resumeAfter = first.resumeAfter;
    let runs = 1;
    while (resumeAfter !== null && runs < 50) {
      const next = await reconcileIndex(target, mesh, { deadline: Date.now() + 60_000, maxPages: 1, startAfter: resumeAfter });
      expect(next.tombstoned).toBe(0);
      added += next.added;
      resumeAfter = next.resumeAfter;
      runs++;
    }
    expect(resumeAfter).toBeNull();
    expect(added).toBe(1001);
    const rows = await meshDb(mesh).prepare("SELECT count(*) AS n FROM objects WHERE mesh = ? AND deleted_at IS NULL").bind(mesh).first<{ n: number }>();
    expect(rows?.n).toBe(1001);
  });

  it("racing client writes and deletes, never tombstones a live object nor brings back a deleted one", async () => {
    const mesh = uniqueMesh();
    await bootstrapRoot(target, mesh, "/App");
    const doomed = Array.from({ length: 10 }, (_, i) => `/App/changes/${changeName(100 + i)}`);
    for (const path of doomed) expect((await putFile(target, mesh, path, "old")).status).toBe(201);
    const fresh = Array.from({ length: 30 }, (_, i) => `/App/changes/${changeName(200 + i)}`);
    const racing = [
      ...fresh.map((path) => putFile(target, mesh, path, "new").then((r) => r.status)),
      ...doomed.map((path) => call(target, `/io/${mesh}/file?path=${path}`, { method: "DELETE" }).then((r) => r.status)),
      reconcile(mesh).then(() => 0),
      reconcile(mesh).then(() => 0),
    ];
    const statuses = await Promise.all(racing);
    expect(statuses.slice(0, 30).every((s) => s === 201)).toBe(true);
    expect(statuses.slice(30, 40).every((s) => s === 204)).toBe(true);
    const names = (await listFiles(target, mesh, "/App/changes")).map((f) => f.name).sort();
    // The deleted ones stay listed through the listing window, but as tombstones.
    expect(names).toEqual([...fresh, ...doomed].map((p) => p.slice("/App/changes/".length)).sort());
    for (const path of doomed) {
      const row = await meshDb(mesh).prepare("SELECT deleted_at FROM objects WHERE mesh = ? AND path = ?").bind(mesh, path).first<{ deleted_at: number | null }>();
      expect(row?.deleted_at).not.toBeNull();
    }
    expect(await reconcile(mesh)).toMatchObject({ added: 0, tombstoned: 0, fixed: 0, complete: true });
  });

  it("stops at its HEAD budget before tombstoning more, and the next run finishes", async () => {
    const mesh = uniqueMesh();
    const insert = meshDb(mesh).prepare(
      `INSERT INTO objects (mesh, path, parent, name, size, etag, modified_at, class, location, version, deleted_at)
       VALUES (?, ?, '/App', ?, 1, '"x"', 1, 'other', 'r2', 0, NULL)`,
    );
    await meshDb(mesh).batch(["g1", "g2", "g3"].map((name) => insert.bind(mesh, `/App/${name}`, name)));
    const first = await reconcileIndex(target, mesh, { deadline: Date.now() + 60_000, maxPages: 10, maxHeads: 2 });
    expect(first).toMatchObject({ scanned: { heads: 2 }, tombstoned: 2, complete: false, resumeAfter: "" });
    const second = await reconcileIndex(target, mesh, { deadline: Date.now() + 60_000, maxPages: 10, maxHeads: 2 });
    expect(second).toMatchObject({ scanned: { heads: 1 }, tombstoned: 1, complete: true, resumeAfter: null });
  });
});
