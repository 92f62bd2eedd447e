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
