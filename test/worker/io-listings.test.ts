import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { fillFolder } from "../../worker/objects/object-index";
import { changeName, deleteFile, ioUrl, listNames, newMesh, post, putFile, meshDb } from "./io-support";

async function seedR2(mesh: string, path: string, body: string, modified = 1_700_000_000_000): Promise<R2Object> {
  return env.BUCKET.put(`m/${mesh}${path}`, body, { customMetadata: { path, class: "other", modified: String(modified) } });
}

describe("POST /sync/io/:mesh/list-files", () => {
  it("lists direct children only, sorted by name, with name, path, size, modifiedTime and etag", async () => {
    const mesh = newMesh();
    await putFile(mesh, "/R/b.txt", "bb");
    await putFile(mesh, "/R/a.txt", "a");
    await putFile(mesh, "/R/sub/c.txt", "ccc");
    const res = await post(mesh, "list-files", { path: "/R" });
    expect(res.status).toBe(200);
    const { files } = (await res.json()) as { files: Record<string, unknown>[] };
    expect(files.map((f) => f.name)).toEqual(["a.txt", "b.txt"]);
    expect(Object.keys(files[0]!).sort()).toEqual(["etag", "modifiedTime", "name", "path", "size"]);
    expect(files[0]).toMatchObject({ name: "a.txt", path: "/R/a.txt", size: 1 });
    expect(new Date(files[0]!.modifiedTime as string).toISOString()).toBe(files[0]!.modifiedTime);
    expect(files[0]!.etag).toMatch(/^".+"$/);
  });

  it("lists the mesh root's own files", async () => {
    const mesh = newMesh();
    await putFile(mesh, "/top.bin", "t");
    await putFile(mesh, "/R/nested", "n");
    expect(await listNames(mesh, "/")).toEqual(["top.bin"]);
  });

  it("answers an empty list for a missing folder", async () => {
    const res = await post(newMesh(), "list-files", { path: "/Nope/changes" });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ files: [] });
  });

  it("normalizes the folder path (slashes collapsed, trailing slash dropped)", async () => {
    const mesh = newMesh();
    await putFile(mesh, "R//x", "x");
    expect(await listNames(mesh, "R///")).toEqual(["x"]);
  });

  it("fills the index once from objects already in R2, then answers from the index", async () => {
    const mesh = newMesh();
    const name = changeName(1);
    await seedR2(mesh, "/R/old.bin", "old", 1_700_000_000_123);
    await seedR2(mesh, `/R/changes/${name}`, "chg");
    const res = await post(mesh, "list-files", { path: "/R" });
    expect(await res.json()).toEqual({
      files: [{ name: "old.bin", path: "/R/old.bin", size: 3, modifiedTime: new Date(1_700_000_000_123).toISOString(), etag: expect.stringMatching(/^".+"$/) }],
    });
    expect(await listNames(mesh, "/R/changes")).toEqual([name]);
    const marked = await meshDb(mesh).prepare("SELECT folder FROM indexed_folders WHERE mesh = ?").bind(mesh).all();
    expect(marked.results).toEqual([{ folder: "/R" }]);
    // Written behind the index's back: an indexed folder is answered from D1 alone.
    await seedR2(mesh, "/R/sneaky.bin", "s");
    expect(await listNames(mesh, "/R")).toEqual(["old.bin"]);
  });

  it("never resurrects a deleted object when a fill lists it", async () => {
    const mesh = newMesh();
    await putFile(mesh, "/R/gone", "g");
    await deleteFile(mesh, "/R/gone");
    await seedR2(mesh, "/R/gone", "came back behind our back");
    expect(await listNames(mesh, "/R")).toEqual([]);
  });

  it("answers 400 for malformed JSON, a non-object, or a missing path", async () => {
    const mesh = newMesh();
    for (const body of ["{not json", "[1,2]", '"just a string"', "{}", '{"path": 5}', ""]) {
      const res = await post(mesh, "list-files", body);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: "bad_request" });
    }
  });

  it("answers 405 for GET", async () => {
    const res = await SELF.fetch(ioUrl(newMesh(), "list-files"));
    expect(res.status).toBe(405);
  });
});

describe("POST /sync/io/:mesh/list-folders", () => {
  it("names the child folders, not their paths", async () => {
    const mesh = newMesh();
    for (const p of ["/R/changes/x", "/R/devices/d.bin", "/R/mainline/s/deep", "/R/top"]) await putFile(mesh, p, "1");
    const res = await post(mesh, "list-folders", { path: "/R" });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ folders: ["changes", "devices", "mainline"] });
    expect(await (await post(mesh, "list-folders", { path: "/" })).json()).toEqual({ folders: ["R"] });
    expect(await (await post(mesh, "list-folders", { path: "/Missing" })).json()).toEqual({ folders: [] });
  });
});

describe("POST /sync/io/:mesh/metadata", () => {
  it("answers 200 with the file's metadata", async () => {
    const mesh = newMesh();
    await putFile(mesh, "/R/a.bin", "abcd");
    const res = await post(mesh, "metadata", { path: "/R/a.bin" });
    expect(res.status).toBe(200);
    const { file } = (await res.json()) as { file: Record<string, unknown> };
    expect(file).toMatchObject({ name: "a.bin", path: "/R/a.bin", size: 4 });
  });

  it("answers 404 with file null for an absent file", async () => {
    const res = await post(newMesh(), "metadata", { path: "/R/none" });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: "not_found", message: "No file at /R/none.", file: null });
  });

  it("finds an object that was only in R2", async () => {
    const mesh = newMesh();
    await seedR2(mesh, "/R/pre.bin", "pre");
    const res = await post(mesh, "metadata", { path: "/R/pre.bin" });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ file: { path: "/R/pre.bin", size: 3 } });
  });
});

describe("POST /sync/io/:mesh/ensure-folder", () => {
  it("answers 204 and stores nothing", async () => {
    const mesh = newMesh();
    const res = await post(mesh, "ensure-folder", { path: "/R/changes" });
    expect(res.status).toBe(204);
    expect(await res.text()).toBe("");
    expect(await listNames(mesh, "/R/changes")).toEqual([]);
  });

  it("answers 400 for an invalid path", async () => {
    const res = await post(newMesh(), "ensure-folder", { path: "/R/../x" });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "invalid_path" });
  });
});

describe("list-files JSON built by D1, with the hub's control objects spliced in", () => {
  it("describes every file exactly as toFileInfo would, modifiedTime milliseconds included", async () => {
    const mesh = newMesh();
    const times = [0, 1, 999, 1_000, 1_700_000_000_123, 1_700_000_000_999, 951_782_400_000, 253_402_300_799_999];
    const entries = times.map((t, i) => ({
      path: `/T/f${i}.bin`,
      size: i + 1,
      etag: `"e${i}"`,
      modifiedAt: t,
      cls: "other" as const,
      location: "r2" as const,
      version: 0,
    }));
    await fillFolder(meshDb(mesh), mesh, "/T", entries, Date.now());
    const res = await post(mesh, "list-files", { path: "/T" });
    const { files } = (await res.json()) as { files: { name: string; modifiedTime: string; size: number; path: string }[] };
    expect(files.map((f) => f.modifiedTime)).toEqual(times.map((t) => new Date(t).toISOString()));
    expect(files.map((f) => [f.name, f.path, f.size])).toEqual(times.map((_, i) => [`f${i}.bin`, `/T/f${i}.bin`, i + 1]));
  });

  it("keeps name order when control objects sort after, before or among the R2 objects", async () => {
    const generation = JSON.stringify({ epoch: 1, snapshotPath: null });
    const cases: [string, string[]][] = [
      ["after", ["a.bin", "b.bin"]],
      ["before", ["x.bin", "y.bin"]],
      ["among", ["a.bin", "n.bin", "z.bin"]],
      ["alone", []],
    ];
    for (const [label, others] of cases) {
      const mesh = newMesh();
      for (const name of others) expect((await putFile(mesh, `/R/${name}`, name)).status).toBe(201);
      expect((await putFile(mesh, "/R/manifest-1.json", generation)).status).toBe(201);
      expect((await putFile(mesh, "/R/manifest-2.json", generation)).status).toBe(201);
      const expected = [...others, "manifest-1.json", "manifest-2.json"].sort();
      expect(await listNames(mesh, "/R"), label).toEqual(expected);
    }
  });

  it("lists head.json after a changes folder's change files", async () => {
    const mesh = newMesh();
    const names = [1, 2, 3].map((i) => changeName(i));
    for (const name of names) expect((await putFile(mesh, `/R/changes/${name}`, name)).status).toBe(201);
    const head = JSON.stringify({ latestHlc: `${"0".repeat(15)}-0000-devA` });
    expect((await putFile(mesh, "/R/changes/head.json", head)).status).toBe(201);
    expect(await listNames(mesh, "/R/changes")).toEqual([...names, "head.json"]);
  });
});
