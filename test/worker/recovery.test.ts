import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";

const textOf = async (res: Response) => new TextDecoder().decode(await res.arrayBuffer());
const ORIGIN = "http://meshbox.test/sync/recovery";

/** A fresh 43-character base64url locator (32 random bytes). */
function newLocator(): string {
  const raw = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...raw)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const put = (locator: string, body: BodyInit) => SELF.fetch(`${ORIGIN}/${locator}`, { method: "PUT", body });
const get = (locator: string) => SELF.fetch(`${ORIGIN}/${locator}`);

describe("PUT /sync/recovery/:locator", () => {
  it("stores a wrapper with 201, then refuses any second write with 409 and keeps the first", async () => {
    const locator = newLocator();
    expect(locator).toHaveLength(43);
    const first = await put(locator, "wrapped-key-1");
    expect(first.status).toBe(201);
    const second = await put(locator, "wrapped-key-2");
    expect(second.status).toBe(409);
    expect(await second.json()).toMatchObject({ error: "conflict" });
    expect((await put(locator, "wrapped-key-1")).status).toBe(409);
    expect(await textOf(await get(locator))).toBe("wrapped-key-1");
  });

  it("lets exactly one of two concurrent first writes win", async () => {
    const locator = newLocator();
    const [a, b] = await Promise.all([put(locator, "A"), put(locator, "B")]);
    expect([a.status, b.status].sort()).toEqual([201, 409]);
    expect(await textOf(await get(locator))).toBe(a.status === 201 ? "A" : "B");
  });

  it("refuses a wrapper over 256 KiB with 413 and stores nothing", async () => {
    const locator = newLocator();
    const res = await put(locator, new Uint8Array(256 * 1024 + 1));
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: "payload_too_large", limit: 256 * 1024 });
    expect(await env.BUCKET.head(`r/${locator}`)).toBeNull();
  });

  for (const [what, locator] of [
    ["42 characters", "a".repeat(42)],
    ["44 characters", "a".repeat(44)],
    ["a character outside [A-Za-z0-9_-]", `${"a".repeat(42)}.`],
  ] as const) {
    it(`refuses a locator of ${what} with 400`, async () => {
      const res = await put(locator, "x");
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: "bad_request" });
      expect((await get(locator)).status).toBe(400);
    });
  }
});

describe("GET /sync/recovery/:locator", () => {
  it("answers 200 with the exact bytes, or 404", async () => {
    const locator = newLocator();
    expect((await get(locator)).status).toBe(404);
    const data = crypto.getRandomValues(new Uint8Array(1000));
    await put(locator, data);
    const res = await get(locator);
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Length")).toBe("1000");
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(data);
  });

  it("is never reachable through a mesh's /io/ routes", async () => {
    const locator = newLocator();
    await put(locator, "secret");
    const viaIo = await SELF.fetch(`http://meshbox.test/sync/io/r/file?path=/${locator}`);
    expect(viaIo.status).toBe(404);
  });
});

describe("DELETE /sync/recovery/:locator", () => {
  it("answers 405", async () => {
    const res = await SELF.fetch(`${ORIGIN}/${newLocator()}`, { method: "DELETE" });
    expect(res.status).toBe(405);
  });
});
