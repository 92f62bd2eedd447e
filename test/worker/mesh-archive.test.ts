import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { meshHoldsAnything } from "../../worker/operations/mesh-import";
import { BLOCK } from "../../worker/lib/tar";
import { adminEnv, asAdmin, bootstrapRoot, call, changeName, listFiles, putFile, uniqueMesh } from "./admin-support";
import { meshDb } from "./io-support";

const target = adminEnv();
const GUARD = "ab".repeat(32);

async function mustPut(mesh: string, path: string, body: string | Uint8Array, status = 201): Promise<void> {
  const res = await putFile(target, mesh, path, body);
  expect(res.status, `${path}: ${await res.clone().text()}`).toBe(status);
}

/** A mesh as a compacting device leaves it, with things an export must leave out. */
async function seedMesh(mesh: string): Promise<void> {
  await bootstrapRoot(target, mesh, "/MyApp");
  for (let n = 1; n <= 3; n++) await mustPut(mesh, `/MyApp/changes/${changeName(n)}`, `sealed-change-${n}`);
  await mustPut(mesh, "/MyApp/changes/head.json", JSON.stringify({ latestHlc: "0001" }));
  await mustPut(mesh, "/MyApp/devices/dev1.json", JSON.stringify({ deviceId: "dev1" }));
  const snapshot = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251);
  await mustPut(mesh, "/MyApp/mainline/snapshot-2.bin", snapshot);
  const generation = JSON.stringify({ version: 3, meshId: mesh, epoch: 2, snapshotPath: "/MyApp/mainline/snapshot-2.bin", encrypted: true });
  await mustPut(mesh, "/MyApp/manifest-2.json", generation);
  await mustPut(mesh, "/MyApp/manifest.json", JSON.stringify({ currentGeneration: 2, file: "manifest-2.json" }), 204);
  // Left out of an export: a candidate generation and a deleted change file in its grace window.
  await mustPut(mesh, "/MyApp/manifest-3.json", JSON.stringify({ version: 3, epoch: 3, snapshotPath: null }));
  const del = await call(target, `/io/${mesh}/file?path=${encodeURIComponent(`/MyApp/changes/${changeName(1)}`)}`, { method: "DELETE" });
  expect(del.status).toBe(204);
  const stored = await call(target, `/io/${mesh}/stored-file?path=${encodeURIComponent("/MyApp/files/photo.bin")}`, {
    method: "PUT",
    headers: { "Content-Type": "image/x-sealed", "X-Interocitor-Device-Id": "dev1", "X-Interocitor-Seal-Guard": GUARD, "X-Interocitor-Plaintext-Size": "7" },
    body: "ciphertext-photo",
  });
  expect(stored.status).toBe(201);
}

async function exportBytes(mesh: string): Promise<Uint8Array> {
  const res = await call(target, `/admin/meshes/${mesh}/export`, asAdmin());
  expect(res.status).toBe(200);
  expect(res.headers.get("Content-Type")).toBe("application/x-tar");
  return new Uint8Array(await res.arrayBuffer());
}

async function importBytes(mesh: string, archive: Uint8Array, query = ""): Promise<Response> {
  return call(target, `/admin/meshes/${mesh}/import${query}`, asAdmin({ method: "POST", body: archive }));
}

async function text(mesh: string, path: string): Promise<{ status: number; body: string; etag: string | null }> {
  const res = await call(target, `/io/${mesh}/file?path=${encodeURIComponent(path)}`);
  return { status: res.status, body: await res.text(), etag: res.headers.get("ETag") };
}

const folders = ["/MyApp", "/MyApp/changes", "/MyApp/devices", "/MyApp/mainline"];

/**
 * Every listing of the app's folders, without what an export leaves out by design: the candidate
 * generation and the change file deleted by the seed (listed through its deletion window on the
 * source only; docs/ARCHIVE.md).
 */
async function listings(mesh: string) {
  const out: Record<string, unknown> = {};
  const notExported = new Set(["manifest-3.json", changeName(1)]);
  for (const folder of folders) out[folder] = (await listFiles(target, mesh, folder)).filter((f) => !notExported.has(f.name));
  return out;
}

/** Byte offset of the first entry whose pax path starts with `name`. */
function offsetOf(archive: Uint8Array, name: string): number {
  const at = new TextDecoder("latin1").decode(archive).indexOf(` path=${name}`);
  expect(at).toBeGreaterThan(0);
  return at;
}

describe("GET /sync/admin/meshes/:mesh/export and POST .../import", () => {
  it("restores into another mesh the same bytes, paths, listings, etags and committed generation", async () => {
    const source = uniqueMesh();
    await seedMesh(source);
    const archive = await exportBytes(source);
    const copy = uniqueMesh();
    const res = await importBytes(copy, archive);
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ mesh: copy, controlObjects: 5, objects: 3, storedFiles: 1, bytes: expect.any(Number), replaced: false });

    const expected = await listings(source);
    expect(await listings(copy)).toEqual(expected);
    for (const path of ["/MyApp/manifest.json", "/MyApp/manifest-2.json", `/MyApp/changes/${changeName(2)}`, "/MyApp/mainline/snapshot-2.bin"]) {
      expect(await text(copy, path)).toEqual(await text(source, path));
    }
    // Left out: the candidate generation and the deleted change file.
    expect((await text(copy, "/MyApp/manifest-3.json")).status).toBe(404);
    expect((await text(copy, `/MyApp/changes/${changeName(1)}`)).status).toBe(404);
    const stats = await call(target, `/admin/meshes/${copy}`, asAdmin());
    expect(((await stats.json()) as { hub: { currentGeneration: number } }).hub.currentGeneration).toBe(2);
    // Listings were published complete: the mesh root is marked indexed, no read-through fill needed.
    const mark = await meshDb(copy).prepare(`SELECT folder FROM indexed_folders WHERE mesh = ?1`).bind(copy).all<{ folder: string }>();
    expect(mark.results).toEqual([{ folder: "/" }]);
  });

  it("keeps the write rules in force: committed generation and snapshot immutable, pointer CAS, seal", async () => {
    const source = uniqueMesh();
    await seedMesh(source);
    const copy = uniqueMesh();
    expect((await importBytes(copy, await exportBytes(source))).status).toBe(201);
    const gen = await putFile(target, copy, "/MyApp/manifest-2.json", "{}");
    expect(gen.status).toBe(409);
    const older = await putFile(target, copy, "/MyApp/manifest.json", JSON.stringify({ currentGeneration: 1, file: "manifest-1.json" }));
    expect(older.status).toBe(409);
    const snap = await putFile(target, copy, "/MyApp/mainline/snapshot-2.bin", "other bytes");
    expect(snap.status).toBe(409);
    const snapDelete = await call(target, `/io/${copy}/file?path=${encodeURIComponent("/MyApp/mainline/snapshot-2.bin")}`, { method: "DELETE" });
    expect(snapDelete.status).toBe(409);
    const path = encodeURIComponent("/MyApp/files/photo.bin");
    const unsealed = await call(target, `/io/${copy}/stored-file?path=${path}`, { method: "DELETE" });
    expect(unsealed.status).toBe(403);
    const got = await call(target, `/io/${copy}/stored-file?path=${path}`);
    expect(got.status).toBe(200);
    expect(await got.text()).toBe("ciphertext-photo");
    const meta = await call(target, `/io/${copy}/stored-file-metadata`, { method: "POST", body: JSON.stringify({ path: "/MyApp/files/photo.bin" }) });
    expect(await meta.json()).toMatchObject({ file: { contentType: "image/x-sealed", plaintextSize: 7, uploadedByDeviceId: "dev1", size: 16 } });
    // A new generation still commits through the CAS, as on the original.
    await mustPut(copy, "/MyApp/manifest-3.json", JSON.stringify({ version: 3, epoch: 3, snapshotPath: null }));
    await mustPut(copy, "/MyApp/manifest.json", JSON.stringify({ currentGeneration: 3, file: "manifest-3.json" }), 204);
  });

  it("refuses a non-empty target with 409 and leaves it as it was; ?replace=1 wipes it first", async () => {
    const source = uniqueMesh();
    await seedMesh(source);
    const archive = await exportBytes(source);
    const busy = uniqueMesh();
    await bootstrapRoot(target, busy, "/Other");
    const refused = await importBytes(busy, archive);
    expect(refused.status).toBe(409);
    expect(await refused.json()).toEqual({
      error: "conflict",
      message: `The mesh ${busy} is not empty; wipe it first, or import with ?replace=1 (CLI --replace).`,
    });
    expect((await text(busy, "/Other/manifest.json")).status).toBe(200);
    const replaced = await importBytes(busy, archive, "?replace=1");
    expect(replaced.status).toBe(201);
    expect(((await replaced.json()) as { replaced: boolean }).replaced).toBe(true);
    expect((await text(busy, "/Other/manifest.json")).status).toBe(404);
    expect(await listings(busy)).toEqual(await listings(source));
  });

  it("refuses a truncated archive with 400 and leaves the target empty", async () => {
    const source = uniqueMesh();
    await seedMesh(source);
    const archive = await exportBytes(source);
    const copy = uniqueMesh();
    // Cut in the middle of the snapshot body: everything before it was already streamed into R2.
    const cut = offsetOf(archive, "objects/MyApp/mainline/snapshot-2.bin") + 1024 * 1024;
    const res = await importBytes(copy, archive.slice(0, cut));
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: "bad_request", message: "The archive is corrupt: it ends in the middle of an entry (truncated)." });
    expect(await meshHoldsAnything(env, copy)).toBe(false);
    expect((await env.BUCKET.list({ prefix: `m/${copy}/` })).objects).toEqual([]);
    const cutAtEnd = await importBytes(copy, archive.slice(0, archive.byteLength - 3 * BLOCK));
    expect(cutAtEnd.status).toBe(400);
    expect(await meshHoldsAnything(env, copy)).toBe(false);
  });

  it("refuses a corrupted header checksum and a flipped body byte with 400, leaving the target empty", async () => {
    const source = uniqueMesh();
    await seedMesh(source);
    const archive = await exportBytes(source);
    const copy = uniqueMesh();

    const badHeader = archive.slice();
    // The pax header block sits just before the block holding its " path=" record.
    const headerAt = Math.floor(offsetOf(badHeader, `objects/MyApp/changes/${changeName(3)}`) / BLOCK) * BLOCK - BLOCK;
    badHeader[headerAt + 5] = badHeader[headerAt + 5]! ^ 0x01;
    const h = await importBytes(copy, badHeader);
    expect(h.status).toBe(400);
    expect(await h.json()).toEqual({ error: "bad_request", message: "The archive is corrupt: a header checksum does not match." });
    expect(await meshHoldsAnything(env, copy)).toBe(false);

    const badBody = archive.slice();
    const bodyAt = offsetOf(badBody, "objects/MyApp/mainline/snapshot-2.bin") + 2 * BLOCK + 4096;
    badBody[bodyAt] = badBody[bodyAt]! ^ 0xff;
    const b = await importBytes(copy, badBody);
    expect(b.status).toBe(400);
    expect(await b.json()).toEqual({ error: "bad_request", message: "The archive is corrupt: its contents do not match the digest in its trailer." });
    expect(await meshHoldsAnything(env, copy)).toBe(false);
    expect((await env.BUCKET.list({ prefix: `f/${copy}/` })).objects).toEqual([]);

    const garbage = await importBytes(copy, new TextEncoder().encode("not a tar archive at all"));
    expect(garbage.status).toBe(400);
    expect(await meshHoldsAnything(env, copy)).toBe(false);
  });

  it("carries a mesh of more than one R2 list page (1,100 change files) across, every listing exact", async () => {
    const source = uniqueMesh();
    await bootstrapRoot(target, source, "/Big");
    const names = Array.from({ length: 1_100 }, (_, i) => changeName(i));
    for (let i = 0; i < names.length; i += 100) {
      // Written straight into R2 as the write path stores them; a listing fills the index once.
      await Promise.all(
        names.slice(i, i + 100).map((name, j) =>
          env.BUCKET.put(`m/${source}/Big/changes/${name}`, `change ${i + j}`, {
            customMetadata: { path: `/Big/changes/${name}`, class: "change", modified: String(1_700_000_000_000 + i + j), write: "seed" },
          }),
        ),
      );
    }
    const before = await listFiles(target, source, "/Big/changes");
    expect(before).toHaveLength(1_100);
    const copy = uniqueMesh();
    const res = await importBytes(copy, await exportBytes(source));
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ objects: 1_100, controlObjects: 2 });
    expect(await listFiles(target, copy, "/Big/changes")).toEqual(before);
  }, 60_000);

  it("answers 404 for exporting a mesh that holds nothing, 405 for other methods, 401 without the admin token", async () => {
    const mesh = uniqueMesh();
    const empty = await call(target, `/admin/meshes/${mesh}/export`, asAdmin());
    expect(empty.status).toBe(404);
    expect(await empty.json()).toEqual({ error: "not_found", message: "no such mesh" });
    const post = await call(target, `/admin/meshes/${mesh}/export`, asAdmin({ method: "POST" }));
    expect(post.status).toBe(405);
    expect(post.headers.get("Allow")).toBe("GET, HEAD");
    const get = await call(target, `/admin/meshes/${mesh}/import`, asAdmin());
    expect(get.status).toBe(405);
    expect(get.headers.get("Allow")).toBe("POST");
    const anon = await call(target, `/admin/meshes/${mesh}/export`);
    expect(anon.status).toBe(401);
    const anonImport = await call(target, `/admin/meshes/${mesh}/import`, { method: "POST", body: "x" });
    expect(anonImport.status).toBe(401);
    const badReplace = await importBytes(mesh, new Uint8Array(1024), "?replace=maybe");
    expect(badReplace.status).toBe(400);
  });
});
