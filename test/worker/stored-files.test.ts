import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { chunked, ioUrl, newMesh, post, randomBytes, meshDb } from "./io-support";

const MiB = 1024 * 1024;
const GUARD = "ab".repeat(32);
const OTHER_GUARD = "cd".repeat(32);

function putStored(mesh: string, path: string, body: BodyInit, headers: Record<string, string> = {}): Promise<Response> {
  return SELF.fetch(ioUrl(mesh, "stored-file", path), {
    method: "PUT",
    body,
    headers: { "Content-Type": "image/png", "X-Interocitor-Device-Id": "dev-1", ...headers },
  });
}

function deleteStored(mesh: string, path: string, headers: Record<string, string> = {}): Promise<Response> {
  return SELF.fetch(ioUrl(mesh, "stored-file", path), { method: "DELETE", headers });
}

async function usage(mesh: string) {
  return meshDb(mesh).prepare("SELECT stored_bytes, stored_count FROM mesh_usage WHERE mesh = ?").bind(mesh).first();
}

async function nothingStored(mesh: string): Promise<void> {
  expect((await env.BUCKET.list({ prefix: `f/${mesh}/` })).objects).toEqual([]);
  const rows = await meshDb(mesh).prepare("SELECT path FROM stored_files WHERE mesh = ?").bind(mesh).all();
  expect(rows.results).toEqual([]);
}

describe("PUT /sync/io/:mesh/stored-file", () => {
  it("stores a new file with 201 and answers its full metadata", async () => {
    const mesh = newMesh();
    const before = Date.now();
    const res = await putStored(mesh, "/App/files/a.png", "12345", {
      "X-Interocitor-Plaintext-Size": "3",
      "X-Interocitor-Taint": "t-1",
    });
    expect(res.status).toBe(201);
    const { file } = (await res.json()) as { file: Record<string, unknown> };
    expect(file).toEqual({
      name: "a.png",
      path: "/App/files/a.png",
      size: 5,
      modifiedTime: expect.any(String),
      etag: expect.stringMatching(/^".+"$/),
      uploadedByDeviceId: "dev-1",
      uploadedAt: file.modifiedTime,
      lastAccessedAt: null,
      useCount: 0,
      plaintextSize: 3,
      storedSize: 5,
      contentType: "image/png",
      taint: "t-1",
    });
    expect(Date.parse(file.uploadedAt as string)).toBeGreaterThanOrEqual(before);
    expect(await usage(mesh)).toEqual({ stored_bytes: 5, stored_count: 1 });
  });

  it("overwrites with 200 and keeps the mesh's byte total exact", async () => {
    const mesh = newMesh();
    await putStored(mesh, "/App/files/a", "1234567890");
    await putStored(mesh, "/App/files/b", "xy");
    const res = await putStored(mesh, "/App/files/a", "123", { "X-Interocitor-Device-Id": "dev-2" });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ file: { size: 3, storedSize: 3, uploadedByDeviceId: "dev-2", plaintextSize: null, taint: null } });
    expect(await usage(mesh)).toEqual({ stored_bytes: 5, stored_count: 2 });
  });

  const badHeaders: [string, Record<string, string>][] = [
    ["no device id", { "X-Interocitor-Device-Id": "" }],
    ["a blank device id", { "X-Interocitor-Device-Id": "   " }],
    ["a seal guard that is not 64 hex chars", { "X-Interocitor-Seal-Guard": "abc" }],
  ];
  for (const [what, headers] of badHeaders) {
    it(`refuses ${what} with 400 and stores nothing`, async () => {
      const mesh = newMesh();
      const res = await putStored(mesh, "/App/files/a", "x", headers);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: "bad_request" });
      await nothingStored(mesh);
    });
  }

  it("stores a body sent without Content-Length and accounts its real size", async () => {
    const mesh = newMesh();
    const data = randomBytes(300_000);
    const res = await putStored(mesh, "/App/files/stream.bin", chunked(data));
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ file: { size: 300_000, storedSize: 300_000 } });
    const got = await SELF.fetch(ioUrl(mesh, "stored-file", "/App/files/stream.bin"));
    expect(new Uint8Array(await got.arrayBuffer())).toEqual(data);
    expect(await usage(mesh)).toEqual({ stored_bytes: 300_000, stored_count: 1 });
  });

  it("refuses an unreadable plaintext size with 400 and stores nothing", async () => {
    const mesh = newMesh();
    const res = await putStored(mesh, "/App/files/a", "x", { "X-Interocitor-Plaintext-Size": "12kb" });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: "bad_request",
      message: "X-Interocitor-Plaintext-Size must be a non-negative integer byte count (at most 2^53 - 1).",
    });
    await nothingStored(mesh);
  });

  it("refuses a file over 32 MiB with 413 and stores nothing", async () => {
    const mesh = newMesh();
    const res = await putStored(mesh, "/App/files/huge", new Uint8Array(32 * MiB + 1));
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: "payload_too_large", limit: 32 * MiB });
    await nothingStored(mesh);
  });

  it("refuses a file that would take the mesh over its 512 MiB quota with 413", async () => {
    const mesh = newMesh();
    await meshDb(mesh).prepare("INSERT INTO mesh_usage (mesh, stored_bytes, stored_count) VALUES (?, ?, 7)").bind(mesh, 512 * MiB - 10).run();
    const res = await putStored(mesh, "/App/files/one-too-many", "01234567890");
    expect(res.status).toBe(413);
    const body = (await res.json()) as { error: string; message: string; limit: number };
    expect(body.error).toBe("payload_too_large");
    expect(body.limit).toBe(512 * MiB);
    expect(body.message).toContain("quota");
    await nothingStored(mesh);
    expect((await putStored(mesh, "/App/files/fits", "0123456789")).status).toBe(201);
    expect(await usage(mesh)).toEqual({ stored_bytes: 512 * MiB, stored_count: 8 });
  });

  it("credits an overwrite with the size it replaces", async () => {
    const mesh = newMesh();
    await putStored(mesh, "/App/files/a", "x".repeat(20));
    await meshDb(mesh).prepare("UPDATE mesh_usage SET stored_bytes = ? WHERE mesh = ?").bind(512 * MiB - 5, mesh).run();
    expect((await putStored(mesh, "/App/files/a", "y".repeat(25))).status).toBe(200);
    expect((await putStored(mesh, "/App/files/a", "z".repeat(31))).status).toBe(413);
    expect(await usage(mesh)).toEqual({ stored_bytes: 512 * MiB, stored_count: 1 });
  });
});

describe("GET /sync/io/:mesh/stored-file", () => {
  it("serves the body with its Content-Type and counts the read", async () => {
    const mesh = newMesh();
    await putStored(mesh, "/App/files/a.png", "PNGDATA");
    const before = Date.now();
    for (let i = 0; i < 2; i++) {
      const res = await SELF.fetch(ioUrl(mesh, "stored-file", "/App/files/a.png"));
      expect(res.status).toBe(200);
      expect(res.headers.get("Content-Type")).toBe("image/png");
      expect(res.headers.get("Content-Length")).toBe("7");
      expect(new TextDecoder().decode(await res.arrayBuffer())).toBe("PNGDATA");
    }
    const { file } = (await (await post(mesh, "stored-file-metadata", { path: "/App/files/a.png" })).json()) as {
      file: { useCount: number; lastAccessedAt: string };
    };
    expect(file.useCount).toBe(2);
    expect(Date.parse(file.lastAccessedAt)).toBeGreaterThanOrEqual(before);
  });

  it("answers 404 for an absent file", async () => {
    const res = await SELF.fetch(ioUrl(newMesh(), "stored-file", "/App/files/none"));
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: "not_found" });
  });
});

describe("DELETE /sync/io/:mesh/stored-file", () => {
  it("deletes with 204, then answers 404, and returns the bytes to the quota", async () => {
    const mesh = newMesh();
    await putStored(mesh, "/App/files/a", "abc");
    expect((await deleteStored(mesh, "/App/files/a")).status).toBe(204);
    expect((await deleteStored(mesh, "/App/files/a")).status).toBe(404);
    expect((await SELF.fetch(ioUrl(mesh, "stored-file", "/App/files/a"))).status).toBe(404);
    expect(await usage(mesh)).toEqual({ stored_bytes: 0, stored_count: 0 });
    await nothingStored(mesh);
  });
});

describe("stored-file seal guard", () => {
  it("keeps only a SHA-256 of the guard and requires the identical guard to overwrite or delete", async () => {
    const mesh = newMesh();
    const path = "/App/files/sealed";
    expect((await putStored(mesh, path, "v1", { "X-Interocitor-Seal-Guard": GUARD })).status).toBe(201);
    const row = await meshDb(mesh).prepare("SELECT seal_hash FROM stored_files WHERE mesh = ?").bind(mesh).first<{ seal_hash: string }>();
    expect(row!.seal_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(row!.seal_hash).not.toBe(GUARD);

    for (const headers of [{}, { "X-Interocitor-Seal-Guard": OTHER_GUARD }] as Record<string, string>[]) {
      const put = await putStored(mesh, path, "v2", headers);
      expect(put.status).toBe(403);
      expect(await put.json()).toMatchObject({ error: "forbidden" });
      expect((await deleteStored(mesh, path, headers)).status).toBe(403);
    }
    expect(new TextDecoder().decode(await (await SELF.fetch(ioUrl(mesh, "stored-file", path))).arrayBuffer())).toBe("v1");
    expect((await putStored(mesh, path, "v3", { "X-Interocitor-Seal-Guard": GUARD.toUpperCase() })).status).toBe(200);
    expect((await deleteStored(mesh, path, { "X-Interocitor-Seal-Guard": GUARD })).status).toBe(204);
  });

  it("does not seal a file that was first written without a guard", async () => {
    const mesh = newMesh();
    await putStored(mesh, "/App/files/open", "v1");
    expect((await putStored(mesh, "/App/files/open", "v2", { "X-Interocitor-Seal-Guard": GUARD })).status).toBe(200);
    expect((await deleteStored(mesh, "/App/files/open")).status).toBe(204);
  });
});

describe("POST /sync/io/:mesh/stored-file-metadata", () => {
  it("answers 200 with the metadata, or 404 with file null", async () => {
    const mesh = newMesh();
    await putStored(mesh, "/App/files/a", "abc");
    const ok = await post(mesh, "stored-file-metadata", { path: "/App/files/a" });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ file: { path: "/App/files/a", size: 3, useCount: 0 } });
    const missing = await post(mesh, "stored-file-metadata", { path: "/App/files/none" });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: "not_found", message: "No stored file at /App/files/none.", file: null });
  });

  it("refuses malformed JSON with 400", async () => {
    const res = await post(newMesh(), "stored-file-metadata", "nope");
    expect(res.status).toBe(400);
  });
});
