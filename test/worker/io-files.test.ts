import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import * as files from "../../worker/objects/files";
import worker from "../../worker/index";
import type { Env } from "../../worker/env";
import { bytes, changeName, textOf, chunked, randomBytes, deleteFile, getFile, indexRows, ioUrl, listNames, newMesh, post, putFile, r2Keys, meshDb } from "./io-support";

describe("GET /sync/io/:mesh/health", () => {
  it("answers 200 with ok and the mesh id", async () => {
    const mesh = newMesh();
    const res = await SELF.fetch(ioUrl(mesh, "health"));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, mesh });
  });
});

describe("PUT /sync/io/:mesh/file", () => {
  it("creates a change file with 201 and serves the exact bytes back", async () => {
    const mesh = newMesh();
    const path = `/App/changes/${changeName(1)}`;
    const body = bytes('{"v":1,"iv":"a","ct":"b"}');
    const res = await putFile(mesh, path, body);
    expect(res.status).toBe(201);
    const got = await getFile(mesh, path);
    expect(got.status).toBe(200);
    expect(new Uint8Array(await got.arrayBuffer())).toEqual(body);
  });

  it("answers a second PUT of a change file with 200 and keeps the first bytes", async () => {
    const mesh = newMesh();
    const path = `/App/changes/${changeName(2)}`;
    expect((await putFile(mesh, path, "first")).status).toBe(201);
    const again = await putFile(mesh, path, "second, re-encrypted");
    expect(again.status).toBe(200);
    expect(await textOf(await getFile(mesh, path))).toBe("first");
    expect(await listNames(mesh, "/App/changes")).toEqual([path.split("/").pop()]);
  });

  it("lets exactly one of two concurrent first PUTs of a change file create it", async () => {
    const mesh = newMesh();
    const path = `/App/changes/${changeName(3)}`;
    const [a, b] = await Promise.all([putFile(mesh, path, "AAAA"), putFile(mesh, path, "BBBB")]);
    expect([a.status, b.status].sort()).toEqual([200, 201]);
    const winner = a.status === 201 ? "AAAA" : "BBBB";
    expect(await textOf(await getFile(mesh, path))).toBe(winner);
  });

  it("creates an other file with 201 and overwrites it with 204", async () => {
    const mesh = newMesh();
    const path = "/App/pairing/offer.json";
    const created = await putFile(mesh, path, "one");
    expect(created.status).toBe(201);
    const body = (await created.json()) as { file: { name: string; path: string; size: number } };
    expect(body.file).toMatchObject({ name: "offer.json", path, size: 3 });
    const overwritten = await putFile(mesh, path, "two!");
    expect(overwritten.status).toBe(204);
    expect(await overwritten.text()).toBe("");
    expect(await textOf(await getFile(mesh, path))).toBe("two!");
  });

  it("answers an identical repeat PUT of an other file with 200 and an empty body", async () => {
    const mesh = newMesh();
    const path = "/App/pairing/answer.json";
    expect((await putFile(mesh, path, "same")).status).toBe(201);
    const repeat = await putFile(mesh, path, "same");
    expect(repeat.status).toBe(200);
    expect(await textOf(await getFile(mesh, path))).toBe("same");
  });

  it("stores a body sent without Content-Length", async () => {
    const mesh = newMesh();
    const path = "/App/blob.bin";
    const data = randomBytes(200_000);
    const res = await putFile(mesh, path, chunked(data));
    expect(res.status).toBe(201);
    const got = await getFile(mesh, path);
    expect(got.headers.get("Content-Length")).toBe("200000");
    expect(new Uint8Array(await got.arrayBuffer())).toEqual(data);
  });

  it("stores an empty body as a zero-byte file", async () => {
    const mesh = newMesh();
    expect((await putFile(mesh, "/App/empty", "")).status).toBe(201);
    const got = await getFile(mesh, "/App/empty");
    expect(got.status).toBe(200);
    expect(got.headers.get("Content-Length")).toBe("0");
    expect(await got.text()).toBe("");
  });

  it("writes custom metadata that is enough to rebuild the index", async () => {
    const mesh = newMesh();
    const path = `/App/changes/${changeName(4)}`;
    await putFile(mesh, path, "x");
    const object = await env.BUCKET.head(`m/${mesh}${path}`);
    expect(object?.customMetadata).toMatchObject({ path, class: "change" });
    expect(Number(object?.customMetadata?.modified)).toBeGreaterThan(0);
  });

  it("refuses If-None-Match: * with 412 when the file exists, and creates it when absent", async () => {
    const mesh = newMesh();
    const path = "/App/x.json";
    expect((await putFile(mesh, path, "a", { "If-None-Match": "*" })).status).toBe(201);
    const res = await putFile(mesh, path, "b", { "If-None-Match": "*" });
    expect(res.status).toBe(412);
    expect(await res.json()).toMatchObject({ error: "precondition_failed" });
    expect(await textOf(await getFile(mesh, path))).toBe("a");
  });

  it("honours If-Match: 412 on a stale etag, 204 on the current one", async () => {
    const mesh = newMesh();
    const path = "/App/x.json";
    await putFile(mesh, path, "a");
    const etag = (await getFile(mesh, path)).headers.get("ETag")!;
    expect((await putFile(mesh, path, "b", { "If-Match": '"stale"' })).status).toBe(412);
    expect((await putFile(mesh, path, "b", { "If-Match": etag })).status).toBe(204);
    expect((await putFile(mesh, path, "c", { "If-Match": etag })).status).toBe(412);
    expect(await textOf(await getFile(mesh, path))).toBe("b");
    expect((await putFile(mesh, "/App/none", "z", { "If-Match": "*" })).status).toBe(412);
  });

  it("answers 200 to a re-PUT of a deleted change file and keeps it deleted", async () => {
    const mesh = newMesh();
    const name = changeName(5);
    const path = `/App/changes/${name}`;
    await putFile(mesh, path, "original");
    expect((await deleteFile(mesh, path)).status).toBe(204);
    expect((await putFile(mesh, path, "retried flush")).status).toBe(200);
    // Still listed through its window (PROTOCOL section 3), and still the first bytes, never revived.
    expect(await listNames(mesh, "/App/changes")).toEqual([name]);
    expect(await textOf(await getFile(mesh, path))).toBe("original");
    expect((await deleteFile(mesh, path)).status).toBe(404);
  });

  it("writes head.json through the hub and lists it beside the change files", async () => {
    const mesh = newMesh();
    const name = changeName(6);
    await putFile(mesh, `/App/changes/${name}`, "c");
    const head = await putFile(mesh, "/App/changes/head.json", JSON.stringify({ latestHlc: name.slice(0, 20) }));
    expect([201, 204]).toContain(head.status);
    expect(await listNames(mesh, "/App/changes")).toEqual([name, "head.json"].sort());
    expect(await (await getFile(mesh, "/App/changes/head.json")).json()).toEqual({ latestHlc: name.slice(0, 20) });
  });

  it("records the mesh's last write time with the index write", async () => {
    const mesh = newMesh();
    const before = Date.now();
    await putFile(mesh, "/App/a", "a");
    const row = await meshDb(mesh).prepare("SELECT last_write_at FROM mesh_usage WHERE mesh = ?").bind(mesh).first<{ last_write_at: number }>();
    expect(row!.last_write_at).toBeGreaterThanOrEqual(before);
  });

  it("coalesces the usage write: a write within a minute of a recorded one leaves last_write_at as it was", async () => {
    const mesh = newMesh();
    expect((await putFile(mesh, `/App/changes/${changeName(1)}`, "a")).status).toBe(201);
    const lastWrite = () =>
      meshDb(mesh).prepare("SELECT last_write_at FROM mesh_usage WHERE mesh = ?").bind(mesh).first<{ last_write_at: number }>();
    const first = (await lastWrite())!.last_write_at;
    expect((await putFile(mesh, `/App/changes/${changeName(2)}`, "b")).status).toBe(201);
    expect((await lastWrite())!.last_write_at).toBe(first);
  });

  it("records the write again when the recorded last write is older than a minute, whatever this isolate remembers", async () => {
    const mesh = newMesh();
    expect((await putFile(mesh, `/App/changes/${changeName(1)}`, "a")).status).toBe(201);
    const old = Date.now() - 90_000;
    await meshDb(mesh).prepare("UPDATE mesh_usage SET last_write_at = ? WHERE mesh = ?").bind(old, mesh).run();
    const before = Date.now();
    expect((await putFile(mesh, `/App/changes/${changeName(2)}`, "b")).status).toBe(201);
    const row = await meshDb(mesh).prepare("SELECT last_write_at FROM mesh_usage WHERE mesh = ?").bind(mesh).first<{ last_write_at: number }>();
    expect(row!.last_write_at).toBeGreaterThanOrEqual(before);
  });
});

describe("GET /sync/io/:mesh/file", () => {
  it("sends ETag, Last-Modified as an HTTP date and Content-Length", async () => {
    const mesh = newMesh();
    const path = "/App/data.bin";
    const before = Math.floor(Date.now() / 1000) * 1000;
    await putFile(mesh, path, "hello");
    const res = await getFile(mesh, path);
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Length")).toBe("5");
    expect(res.headers.get("ETag")).toMatch(/^"[0-9a-f]+"$/);
    const lastModified = res.headers.get("Last-Modified")!;
    expect(lastModified).toMatch(/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    expect(Date.parse(lastModified)).toBeGreaterThanOrEqual(before);
    const meta = (await (await post(mesh, "metadata", { path })).json()) as { file: { etag: string } };
    expect(meta.file.etag).toBe(res.headers.get("ETag"));
    await res.arrayBuffer();
  });

  it("answers 404 JSON for an absent file", async () => {
    const mesh = newMesh();
    const res = await getFile(mesh, "/App/manifest-9.json.nope");
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: "not_found", message: "No file at /App/manifest-9.json.nope." });
  });

  it("answers 400 without a path parameter", async () => {
    const res = await SELF.fetch(ioUrl(newMesh(), "file"));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "bad_request" });
  });

  it("answers 400 for two path parameters, an empty or bare one included", async () => {
    const mesh = newMesh();
    await putFile(mesh, "/App/a", "a");
    for (const query of ["path=/App/a&path=/App/b", "path=&path=/App/a", "path&path=/App/a", "path=/App/a&path="]) {
      const res = await SELF.fetch(`${ioUrl(mesh, "file")}?${query}`);
      expect(res.status, query).toBe(400);
      expect(await res.json()).toMatchObject({ error: "bad_request" });
    }
  });

  it("serves a path whose own text says path", async () => {
    const mesh = newMesh();
    await putFile(mesh, "/App/path/path.bin", "p");
    expect(await textOf(await SELF.fetch(`${ioUrl(mesh, "file")}?path=${encodeURIComponent("/App/path/path.bin")}`))).toBe("p");
  });
});

describe("DELETE /sync/io/:mesh/file", () => {
  it("deletes the path and everything under it, but not a sibling that shares its prefix", async () => {
    const mesh = newMesh();
    for (const p of ["/App/dir", "/App/dir/a", "/App/dir/sub/b", "/App/dir-x/c"]) await putFile(mesh, p, p);
    const res = await deleteFile(mesh, "/App/dir");
    expect(res.status).toBe(204);
    for (const p of ["/App/dir", "/App/dir/a", "/App/dir/sub/b"]) expect((await getFile(mesh, p)).status).toBe(404);
    expect(await textOf(await getFile(mesh, "/App/dir-x/c"))).toBe("/App/dir-x/c");
    expect(await r2Keys(`m/${mesh}/`)).toEqual([`m/${mesh}/App/dir-x/c`]);
    expect(await (await post(mesh, "list-folders", { path: "/App" })).json()).toEqual({ folders: ["dir-x"] });
  });

  it("answers 404 when nothing existed", async () => {
    const res = await deleteFile(newMesh(), "/App/none");
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: "not_found" });
  });

  it("keeps deleted change files listed through the window, and other files leave the listing at once", async () => {
    const mesh = newMesh();
    const names = [changeName(1), changeName(2)];
    for (const n of names) await putFile(mesh, `/App/changes/${n}`, n);
    await putFile(mesh, "/App/changes/notes.txt", "n");
    for (const n of names) expect((await deleteFile(mesh, `/App/changes/${n}`)).status).toBe(204);
    expect((await deleteFile(mesh, "/App/changes/notes.txt")).status).toBe(204);
    expect(await listNames(mesh, "/App/changes")).toEqual([...names].sort());
    await meshDb(mesh).prepare("UPDATE objects SET deleted_at = deleted_at - ? WHERE mesh = ?").bind(10 * 60_000, mesh).run();
    expect(await listNames(mesh, "/App/changes")).toEqual([]);
  });

  it("lists a deleted change file with metadata dated at its deletion inside the window; a repeated DELETE is 404", async () => {
    const mesh = newMesh();
    const path = `/App/changes/${changeName(7)}`;
    await putFile(mesh, path, "still here");
    expect((await deleteFile(mesh, path)).status).toBe(204);
    const deletedAt = (await meshDb(mesh).prepare("SELECT deleted_at FROM objects WHERE mesh = ? AND path = ?").bind(mesh, path).first<{ deleted_at: number }>())!.deleted_at;
    expect(await textOf(await getFile(mesh, path))).toBe("still here");
    const meta = await post(mesh, "metadata", { path });
    expect(meta.status).toBe(200);
    expect(await meta.json()).toMatchObject({ file: { path, size: 10, modifiedTime: new Date(deletedAt).toISOString() } });
    expect((await deleteFile(mesh, path)).status).toBe(404);
    // Past the window but inside the grace: unlisted, no metadata, still readable by exact GET.
    await meshDb(mesh).prepare("UPDATE objects SET deleted_at = deleted_at - ? WHERE mesh = ? AND path = ?").bind(10 * 60_000, mesh, path).run();
    expect(await listNames(mesh, "/App/changes")).toEqual([]);
    expect((await post(mesh, "metadata", { path })).status).toBe(404);
    expect(await textOf(await getFile(mesh, path))).toBe("still here");
  });

  it("stops serving a deleted change file the moment its grace runs out, even before the purge", async () => {
    const mesh = newMesh();
    const path = `/App/changes/${changeName(10)}`;
    await putFile(mesh, path, "old");
    await deleteFile(mesh, path);
    await meshDb(mesh).prepare("UPDATE objects SET deleted_at = deleted_at - ? WHERE mesh = ? AND path = ?")
      .bind(20 * 60_000 + 1, mesh, path)
      .run();
    expect(await r2Keys(`m/${mesh}/`)).toEqual([`m/${mesh}${path}`]);
    expect((await getFile(mesh, path)).status).toBe(404);
  });

  it("never serves a deleted other file whose body an R2 failure left behind", async () => {
    const mesh = newMesh();
    await putFile(mesh, "/App/a", "a");
    await deleteFile(mesh, "/App/a");
    await env.BUCKET.put(`m/${mesh}/App/a`, "left behind");
    expect((await getFile(mesh, "/App/a")).status).toBe(404);
    expect(await files.purgeExpiredTombstones(env, Date.now() + 20 * 60_000 + 1)).toBeGreaterThanOrEqual(1);
    expect(await r2Keys(`m/${mesh}/`)).toEqual([]);
  });

  it("purges a deleted change file's body once its grace has run out, and it stays deleted", async () => {
    const mesh = newMesh();
    const path = `/App/changes/${changeName(8)}`;
    await putFile(mesh, path, "old");
    await deleteFile(mesh, path);
    const graceMs = 20 * 60_000;
    await files.purgeExpiredTombstones(env, Date.now() + graceMs + 1);
    expect((await getFile(mesh, path)).status).toBe(404);
    expect(await r2Keys(`m/${mesh}/`)).toEqual([]);
    expect((await putFile(mesh, path, "re-sent")).status).toBe(200);
    expect((await getFile(mesh, path)).status).toBe(404);
    expect(await r2Keys(`m/${mesh}/`)).toEqual([]);
    expect(await listNames(mesh, "/App/changes")).toEqual([]);
  });

  it("removes a change file's body at once when the grace is 0", async () => {
    const mesh = newMesh();
    const path = `/App/changes/${changeName(9)}`;
    await putFile(mesh, path, "gone");
    const noGrace = { ...env, DELETED_CHANGE_GRACE_MS: "0", DELETED_CHANGE_LISTING_MS: "0" };
    const ctx = createExecutionContext();
    expect(await files.deleteTree(noGrace, ctx, mesh, path, {})).toBe(true);
    await waitOnExecutionContext(ctx);
    expect((await getFile(mesh, path)).status).toBe(404);
  });

  it("refuses a stale If-Match with 412 and deletes nothing", async () => {
    const mesh = newMesh();
    await putFile(mesh, "/App/a", "a");
    expect((await deleteFile(mesh, "/App/a", { "If-Match": '"stale"' })).status).toBe(412);
    expect(await textOf(await getFile(mesh, "/App/a"))).toBe("a");
    const etag = (await getFile(mesh, "/App/a")).headers.get("ETag")!;
    expect((await deleteFile(mesh, "/App/a", { "If-Match": etag })).status).toBe(204);
  });

  it("deletes a snapshot that no committed manifest names", async () => {
    const mesh = newMesh();
    const path = "/App/mainline/snapshot-1-server_relay_1.json";
    expect((await putFile(mesh, path, "snap")).status).toBe(201);
    expect(await listNames(mesh, "/App/mainline")).toEqual(["snapshot-1-server_relay_1.json"]);
    expect((await deleteFile(mesh, path)).status).toBe(204);
    expect((await getFile(mesh, path)).status).toBe(404);
    expect(await listNames(mesh, "/App/mainline")).toEqual([]);
  });

  it("deletes an R2 body whose index write never happened", async () => {
    const mesh = newMesh();
    await env.BUCKET.put(`m/${mesh}/App/orphan`, "o", { customMetadata: { path: "/App/orphan", class: "other", modified: "1" } });
    await post(mesh, "list-files", { path: "/Other" });
    expect((await deleteFile(mesh, "/App/orphan")).status).toBe(204);
    expect(await r2Keys(`m/${mesh}/`)).toEqual([]);
  });

  it("refuses to serve with a grace not longer than the listing window: 503 with the vars to fix", async () => {
    const ctx = createExecutionContext();
    const bad = { ...env, DELETED_CHANGE_LISTING_MS: "600000", DELETED_CHANGE_GRACE_MS: "600000" } as Env;
    const res = await worker.fetch(new Request(ioUrl(newMesh(), "list-files"), { method: "POST", body: '{"path":"/App"}' }), bad, ctx);
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({
      error: "unavailable",
      message:
        "meshbox config: DELETED_CHANGE_GRACE_MS (600000) must be greater than DELETED_CHANGE_LISTING_MS (600000): " +
        "a deleted change file listed at the window's last moment must still be readable; fix the vars in wrangler.toml.",
    });
  });

  it("refuses to delete the mesh root", async () => {
    const mesh = newMesh();
    await putFile(mesh, "/App/a", "a");
    expect((await deleteFile(mesh, "/")).status).toBe(400);
    expect(await indexRows(mesh)).toEqual([{ path: "/App/a", deleted_at: null }]);
  });
});
