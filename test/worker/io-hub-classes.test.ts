// The /file routes over objects that live in the mesh's hub (control objects) or whose state the
// hub tracks (snapshots): recursive deletes, listings and index rebuilds span both stores.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { changeName, deleteFile, getFile, listNames, newMesh, post, putFile, textOf } from "./io-support";

const SNAPSHOT = "/App/mainline/snapshot-1-server_relay_1.json";

async function commitGeneration1(mesh: string): Promise<void> {
  expect((await putFile(mesh, SNAPSHOT, "encrypted snapshot")).status).toBe(201);
  const manifest = JSON.stringify({ version: 3, meshId: mesh, epoch: 1, snapshotPath: SNAPSHOT, encrypted: true });
  expect((await putFile(mesh, "/App/manifest-1.json", manifest)).status).toBe(201);
  const pointer = JSON.stringify({ currentGeneration: 1, file: "manifest-1.json" }, null, 2);
  expect([201, 204]).toContain((await putFile(mesh, "/App/manifest.json", pointer)).status);
}

describe("DELETE /sync/io/:mesh/file over hub objects", () => {
  it("deletes control objects under the path along with R2 objects", async () => {
    const mesh = newMesh();
    const name = changeName(1);
    await putFile(mesh, `/App/changes/${name}`, "c");
    await putFile(mesh, "/App/changes/head.json", JSON.stringify({ latestHlc: name.slice(0, 25) }));
    await putFile(mesh, "/App/devices/devA.json", JSON.stringify({ id: "devA" }));
    const before = Date.now();
    expect((await deleteFile(mesh, "/App/changes")).status).toBe(204);
    // The change file stays listed through the deletion window (PROTOCOL section 3), at its
    // deletion time and readable by GET; head.json, a control object, leaves at once.
    const listed = (await (await post(mesh, "list-files", { path: "/App/changes" })).json()) as { files: { name: string; modifiedTime: string }[] };
    expect(listed.files.map((f) => f.name)).toEqual([name]);
    expect(Date.parse(listed.files[0]!.modifiedTime)).toBeGreaterThanOrEqual(before);
    expect(await textOf(await getFile(mesh, `/App/changes/${name}`))).toBe("c");
    expect((await deleteFile(mesh, `/App/changes/${name}`)).status).toBe(404);
    expect((await getFile(mesh, "/App/changes/head.json")).status).toBe(404);
    expect(await listNames(mesh, "/App/devices")).toEqual(["devA.json"]);
    expect((await deleteFile(mesh, "/App/devices/devA.json")).status).toBe(204);
    expect((await getFile(mesh, "/App/devices/devA.json")).status).toBe(404);
    // changes/ still holds the listed (deleted) change file, so it is still a folder; devices/ is gone.
    expect(await (await post(mesh, "list-folders", { path: "/App" })).json()).toEqual({ folders: ["changes"] });
  });

  it("refuses with 409 to delete a tree holding the committed snapshot, and deletes nothing", async () => {
    const mesh = newMesh();
    await commitGeneration1(mesh);
    const name = changeName(2);
    await putFile(mesh, `/App/changes/${name}`, "c");
    const res = await deleteFile(mesh, "/App");
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ error: "conflict" });
    expect(await listNames(mesh, "/App/changes")).toEqual([name]);
    expect(await listNames(mesh, "/App")).toEqual(["manifest-1.json", "manifest.json"]);
    expect(await textOf(await getFile(mesh, SNAPSHOT))).toBe("encrypted snapshot");
    expect((await deleteFile(mesh, SNAPSHOT)).status).toBe(409);
    expect(await listNames(mesh, "/App/mainline")).toEqual(["snapshot-1-server_relay_1.json"]);
  });

  it("honours If-Match on a control object through the hub", async () => {
    const mesh = newMesh();
    await putFile(mesh, "/App/devices/d.json", "{}");
    const etag = (await getFile(mesh, "/App/devices/d.json")).headers.get("ETag")!;
    expect((await deleteFile(mesh, "/App/devices/d.json", { "If-Match": '"nope"' })).status).toBe(412);
    expect((await deleteFile(mesh, "/App/devices/d.json", { "If-Match": etag })).status).toBe(204);
  });
});

describe("POST /sync/io/:mesh/list-files after the index is lost", () => {
  it("rebuilds the folder from R2 and the hub with the same answer", async () => {
    const mesh = newMesh();
    await commitGeneration1(mesh);
    const names = [changeName(1), changeName(2)];
    for (const n of names) await putFile(mesh, `/App/changes/${n}`, n);
    await putFile(mesh, "/App/changes/head.json", JSON.stringify({ latestHlc: names[1]!.slice(0, 25) }));
    await putFile(mesh, "/App/devices/devA.json", "{}");
    const before = await (await post(mesh, "list-files", { path: "/App/changes" })).json();
    const rootBefore = await (await post(mesh, "list-files", { path: "/App" })).json();
    const foldersBefore = await (await post(mesh, "list-folders", { path: "/App" })).json();

    await env.DB.batch([
      env.DB.prepare("DELETE FROM objects WHERE mesh = ?").bind(mesh),
      env.DB.prepare("DELETE FROM indexed_folders WHERE mesh = ?").bind(mesh),
    ]);
    expect(await (await post(mesh, "list-files", { path: "/App/changes" })).json()).toEqual(before);
    expect(await (await post(mesh, "list-files", { path: "/App" })).json()).toEqual(rootBefore);
    expect(await (await post(mesh, "list-folders", { path: "/App" })).json()).toEqual(foldersBefore);
    expect(foldersBefore).toEqual({ folders: ["changes", "devices", "mainline"] });
  });

  it("reads every page of a large R2 folder", async () => {
    const mesh = newMesh();
    const count = 1_100;
    const puts: Promise<unknown>[] = [];
    for (let i = 0; i < count; i++) {
      const path = `/Big/f${String(i).padStart(5, "0")}`;
      puts.push(env.BUCKET.put(`m/${mesh}${path}`, "x", { customMetadata: { path, class: "other", modified: "1" } }));
    }
    await Promise.all(puts);
    const names = await listNames(mesh, "/Big");
    expect(names).toHaveLength(count);
    expect(names[0]).toBe("f00000");
    expect(names[count - 1]).toBe(`f${String(count - 1).padStart(5, "0")}`);
  });
});

describe("PUT /sync/io/:mesh/file under concurrency", () => {
  it("lists every one of many concurrent writes into a folder that is being indexed", async () => {
    const mesh = newMesh();
    const names = Array.from({ length: 40 }, (_, i) => changeName(i));
    const writes = names.map((n) => putFile(mesh, `/App/changes/${n}`, n));
    const lists = Array.from({ length: 5 }, () => post(mesh, "list-files", { path: "/App/changes" }));
    const results = await Promise.all([...writes, ...lists]);
    expect(results.slice(0, names.length).map((r) => r.status)).toEqual(names.map(() => 201));
    expect(await listNames(mesh, "/App/changes")).toEqual([...names].sort());
  });
});
