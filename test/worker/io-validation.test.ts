import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { changeName, chunked, indexRows, ioUrl, newMesh, post, putFile, r2Keys, randomBytes } from "./io-support";

async function expectNothingStored(mesh: string): Promise<void> {
  expect(await r2Keys(`m/${mesh}/`)).toEqual([]);
  expect(await indexRows(mesh)).toEqual([]);
}

const MiB = 1024 * 1024;

describe("PUT /sync/io/:mesh/file refusals", () => {
  const badPaths: [string, string][] = [
    ["a '..' segment", "/R/../etc/passwd"],
    ["a '.' segment", "/R/./x"],
    ["a NUL", "/R/a\u0000b"],
    ["a control character", "/R/a\u0007b"],
    ["a DEL", "/R/a\u007fb"],
    ["a backslash", "/R\\x"],
    ["a 2,000-byte path", `/R/${"x".repeat(2_000)}`],
    ["the root", "/"],
  ];
  for (const [what, path] of badPaths) {
    it(`refuses a path with ${what} with 400 invalid_path and stores nothing`, async () => {
      const mesh = newMesh();
      const res = await putFile(mesh, path, "x");
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: "invalid_path" });
      await expectNothingStored(mesh);
    });
  }

  it("refuses a 1,024-byte path whose R2 key would pass R2's key limit with 400, not 500", async () => {
    const mesh = newMesh();
    const path = `/${"y".repeat(1023)}`;
    for (const res of [await putFile(mesh, path, "x"), await SELF.fetch(ioUrl(mesh, "file", path))]) {
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: "invalid_path" });
    }
    await expectNothingStored(mesh);
  });

  it("accepts a long path that still fits R2's key limit", async () => {
    const mesh = newMesh();
    const path = `/${"y".repeat(1021 - `m/${mesh}`.length)}`;
    expect((await putFile(mesh, path, "x")).status).toBe(201);
    expect((await SELF.fetch(ioUrl(mesh, "file", path))).status).toBe(200);
  });

  it("refuses an invalid mesh id with 400 invalid_mesh_id", async () => {
    const res = await SELF.fetch(ioUrl("-bad", "file", "/R/x"), { method: "PUT", body: "x" });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "invalid_mesh_id" });
  });

  it("refuses an other file over its declared 8 MiB limit with 413 and stores nothing", async () => {
    const mesh = newMesh();
    const res = await putFile(mesh, "/R/big.bin", new Uint8Array(8 * MiB + 1));
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({
      error: "payload_too_large",
      message: `The file is larger than the limit of ${8 * MiB} bytes.`,
      limit: 8 * MiB,
    });
    await expectNothingStored(mesh);
  });

  it("refuses an undeclared-length change file over 8 MiB with 413 and stores nothing", async () => {
    const mesh = newMesh();
    const res = await putFile(mesh, `/R/changes/${changeName(1)}`, chunked(randomBytes(8 * MiB + 10), 512 * 1024));
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: "payload_too_large", limit: 8 * MiB });
    await expectNothingStored(mesh);
  });

  it("accepts an undeclared-length body of exactly the limit", async () => {
    const mesh = newMesh();
    const data = randomBytes(8 * MiB);
    const res = await putFile(mesh, "/R/exact.bin", chunked(data, 1024 * 1024));
    expect(res.status).toBe(201);
    const object = await env.BUCKET.head(`m/${mesh}/R/exact.bin`);
    expect(object?.size).toBe(8 * MiB);
  });

  it("refuses a control object over 256 KiB with 413 and stores nothing", async () => {
    const mesh = newMesh();
    const res = await putFile(mesh, "/R/changes/head.json", new Uint8Array(256 * 1024 + 1));
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: "payload_too_large", limit: 256 * 1024 });
    await expectNothingStored(mesh);
  });

  it("treats a malformed If-Match as a mismatch: 412 and nothing stored", async () => {
    const mesh = newMesh();
    const res = await putFile(mesh, "/R/x", "x", { "If-Match": 'garbage"with"quotes' });
    expect(res.status).toBe(412);
    await expectNothingStored(mesh);
  });
});

describe("POST /sync/io/:mesh/metadata refusals", () => {
  it("refuses malformed JSON with 400", async () => {
    const res = await post(newMesh(), "metadata", "{");
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: "bad_request", message: "The request body is not valid JSON." });
  });

  it("refuses a JSON body over 16 KiB with 413", async () => {
    const res = await post(newMesh(), "metadata", { path: "/x", pad: "p".repeat(17 * 1024) });
    expect(res.status).toBe(413);
  });

  it("refuses a traversal path with 400 invalid_path", async () => {
    const res = await post(newMesh(), "metadata", { path: "/a/../../b" });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "invalid_path" });
  });
});
