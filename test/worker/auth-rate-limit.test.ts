import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { deleteStaleRateLimits, hitRateLimit } from "../../worker/identity/rate-limit";
import { authEnv, bearer, call, newKey, uniqueIp, uniqueMesh } from "./auth-fixtures";

const mint = (apiKey: string, ip: string, vars = {}) =>
  call(authEnv({ AUTH_RATE_LIMIT_PER_MINUTE: "2", ...vars }), "/auth/session", {
    method: "POST",
    headers: { ...bearer(apiKey), "CF-Connecting-IP": ip },
  });

describe("POST /sync/auth/session rate limits", () => {
  it("answers 429 rate_limited with Retry-After past the per-IP limit", async () => {
    const key = await newKey(uniqueMesh());
    const ip = uniqueIp();
    expect((await mint(key.key, ip)).status).toBe(201);
    expect((await mint(key.key, ip)).status).toBe(201);
    const res = await mint(key.key, ip);
    expect(res.status).toBe(429);
    const retryAfter = Number(res.headers.get("Retry-After"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(await res.json()).toEqual({
      error: "rate_limited",
      message: `Too many requests; retry in ${retryAfter} s.`,
      retryAfter,
    });
  });

  it("counts failed attempts per IP, so guessing keys is limited too", async () => {
    const ip = uniqueIp();
    expect((await mint("mbk_guess", ip)).status).toBe(401);
    expect((await mint("mbk_guess", ip)).status).toBe(401);
    expect((await mint("mbk_guess", ip)).status).toBe(429);
  });

  it("limits one key across client IPs", async () => {
    const key = await newKey(uniqueMesh());
    expect((await mint(key.key, uniqueIp())).status).toBe(201);
    expect((await mint(key.key, uniqueIp())).status).toBe(201);
    expect((await mint(key.key, uniqueIp())).status).toBe(429);
    const other = await newKey(uniqueMesh());
    expect((await mint(other.key, uniqueIp())).status).toBe(201);
  });

  it("is off with AUTH_RATE_LIMIT_PER_MINUTE=0", async () => {
    const key = await newKey(uniqueMesh());
    const ip = uniqueIp();
    for (let i = 0; i < 4; i++) expect((await mint(key.key, ip, { AUTH_RATE_LIMIT_PER_MINUTE: "0" })).status).toBe(201);
  });

  it("also limits DELETE /sync/auth/session per IP", async () => {
    const ip = uniqueIp();
    const del = () =>
      call(authEnv({ AUTH_RATE_LIMIT_PER_MINUTE: "1" }), "/auth/session", {
        method: "DELETE",
        headers: { ...bearer("x.y.z"), "CF-Connecting-IP": ip },
      });
    expect((await del()).status).toBe(401);
    expect((await del()).status).toBe(429);
  });
});

describe("hitRateLimit", () => {
  it("opens a window at the first hit and resets once it has passed", async () => {
    const bucket = `test:${crypto.randomUUID()}`;
    const t0 = 1_000_000_000_000;
    expect(await hitRateLimit(env.DB, bucket, 2, 60_000, t0)).toEqual({ allowed: true, count: 1, retryAfterSeconds: 60 });
    expect(await hitRateLimit(env.DB, bucket, 2, 60_000, t0 + 1_000)).toEqual({ allowed: true, count: 2, retryAfterSeconds: 59 });
    expect(await hitRateLimit(env.DB, bucket, 2, 60_000, t0 + 30_500)).toEqual({ allowed: false, count: 3, retryAfterSeconds: 30 });
    // A hit from an isolate whose clock is a little behind still counts in the open window.
    expect(await hitRateLimit(env.DB, bucket, 2, 60_000, t0 - 500)).toMatchObject({ allowed: false, count: 4 });
    expect(await hitRateLimit(env.DB, bucket, 2, 60_000, t0 + 60_000)).toEqual({ allowed: true, count: 1, retryAfterSeconds: 60 });
  });

  it("counts concurrent hits exactly", async () => {
    const bucket = `test:${crypto.randomUUID()}`;
    const now = Date.now();
    const verdicts = await Promise.all(Array.from({ length: 20 }, () => hitRateLimit(env.DB, bucket, 5, 60_000, now)));
    expect(verdicts.map((v) => v.count).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(verdicts.filter((v) => v.allowed)).toHaveLength(5);
  });

  it("drops stale counters in maintenance", async () => {
    const bucket = `test:${crypto.randomUUID()}`;
    await hitRateLimit(env.DB, bucket, 2, 60_000, 5_000);
    expect(await deleteStaleRateLimits(env.DB, 200_000)).toBeGreaterThanOrEqual(1);
    const row = await env.DB.prepare("SELECT * FROM rate_limits WHERE bucket = ?").bind(bucket).first();
    expect(row).toBeNull();
  });
});

describe("AUTH_RATE_LIMIT_PER_IP and AUTH_RATE_LIMIT_PER_KEY", () => {
  it("applies the per-IP limit on its own: one IP is stopped while the key mints elsewhere", async () => {
    const key = await newKey(uniqueMesh());
    const ip = uniqueIp();
    const vars = { AUTH_RATE_LIMIT_PER_IP: "1", AUTH_RATE_LIMIT_PER_KEY: "100" };
    expect((await mint(key.key, ip, vars)).status).toBe(201);
    expect((await mint(key.key, ip, vars)).status).toBe(429);
    expect((await mint(key.key, uniqueIp(), vars)).status).toBe(201);
  });

  it("applies the per-key limit on its own, whatever the IPs", async () => {
    const key = await newKey(uniqueMesh());
    const vars = { AUTH_RATE_LIMIT_PER_IP: "100", AUTH_RATE_LIMIT_PER_KEY: "1" };
    expect((await mint(key.key, uniqueIp(), vars)).status).toBe(201);
    expect((await mint(key.key, uniqueIp(), vars)).status).toBe(429);
  });
});

describe("requests without CF-Connecting-IP", () => {
  const mintWithoutIp = (apiKey: string) =>
    call(authEnv({ AUTH_RATE_LIMIT_PER_MINUTE: "2" }), "/auth/session", { method: "POST", headers: bearer(apiKey) });

  it("share no bucket: bad requests past the limit never lock out a good key", async () => {
    for (let i = 0; i < 5; i++) expect((await mintWithoutIp("mbk_guess")).status).toBe(401);
    const key = await newKey(uniqueMesh());
    expect((await mintWithoutIp(key.key)).status).toBe(201);
  });

  it("still count against their key", async () => {
    const key = await newKey(uniqueMesh());
    expect((await mintWithoutIp(key.key)).status).toBe(201);
    expect((await mintWithoutIp(key.key)).status).toBe(201);
    expect((await mintWithoutIp(key.key)).status).toBe(429);
  });
});

describe("failed credentials on IO and notify", () => {
  const target = () => authEnv({ MESH_TOKEN_SECRET: "limit-mesh-secret", AUTH_FAILURE_LIMIT_PER_MINUTE: "2" });
  const io = (mesh: string, token: string, ip?: string) =>
    call(target(), `/io/${mesh}/health`, { headers: { ...bearer(token), ...(ip ? { "CF-Connecting-IP": ip } : {}) } });

  it("answer 401 up to AUTH_FAILURE_LIMIT_PER_MINUTE per IP, then 429 with Retry-After", async () => {
    const mesh = uniqueMesh();
    const ip = uniqueIp();
    expect((await io(mesh, "f".repeat(64), ip)).status).toBe(401);
    expect((await io(mesh, "e".repeat(64), ip)).status).toBe(401);
    const res = await io(mesh, "d".repeat(64), ip);
    expect(res.status).toBe(429);
    const retryAfter = Number(res.headers.get("Retry-After"));
    expect(await res.json()).toEqual({
      error: "rate_limited",
      message: `Too many failed credentials from this address; retry in ${retryAfter} s.`,
      retryAfter,
    });
    const notify = await call(target(), `/notify/${mesh}?access_token=${"c".repeat(64)}`, {
      headers: { Upgrade: "websocket", "CF-Connecting-IP": ip },
    });
    expect(notify.status).toBe(429);
  });

  it("still admit a valid credential from a blocked IP, and cost good traffic no D1 write", async () => {
    const mesh = uniqueMesh();
    const ip = uniqueIp();
    const good = await meshBearer(mesh, "limit-mesh-secret");
    expect((await io(mesh, good, ip)).status).toBe(200);
    const bucket = await env.DB.prepare("SELECT count FROM rate_limits WHERE bucket = ?").bind(`auth-fail-ip:${ip}`).first();
    expect(bucket).toBeNull();
    for (let i = 0; i < 3; i++) await io(mesh, "f".repeat(64), ip);
    expect((await io(mesh, good, ip)).status).toBe(200);
  });

  it("are not pooled when CF-Connecting-IP is missing", async () => {
    const mesh = uniqueMesh();
    for (let i = 0; i < 4; i++) expect((await io(mesh, "f".repeat(64))).status).toBe(401);
  });
});

async function meshBearer(mesh: string, secret: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(mesh + secret));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
