// Recovery wrappers need no auth, so they are bounded instead: a per-IP rate limit, a
// tenant-wide quota (count and bytes), an optional expiry purged by maintenance, and totals
// for the admin.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Env } from "../../worker/env";
import { recoveryTotals } from "../../worker/objects/recovery";
import { runMaintenance } from "../../worker/routes/maintenance";
import { call, uniqueIp } from "./auth-fixtures";

function newLocator(): string {
  const raw = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...raw)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const withVars = (vars: Partial<Env>): Env => ({ ...env, LOG_REQUESTS: "0", ...vars }) as Env;
const put = (target: Env, locator: string, body: BodyInit, ip = uniqueIp()) =>
  call(target, `/recovery/${locator}`, { method: "PUT", body, headers: { "CF-Connecting-IP": ip } });

describe("PUT /sync/recovery/:locator limits", () => {
  it("answers 429 past RECOVERY_RATE_LIMIT_PER_MINUTE from one IP, and not for another IP", async () => {
    const target = withVars({ RECOVERY_RATE_LIMIT_PER_MINUTE: "2" });
    const ip = uniqueIp();
    expect((await put(target, newLocator(), "a", ip)).status).toBe(201);
    expect((await put(target, newLocator(), "b", ip)).status).toBe(201);
    const third = await put(target, newLocator(), "c", ip);
    expect(third.status).toBe(429);
    expect(await third.json()).toMatchObject({ error: "rate_limited" });
    expect((await put(target, newLocator(), "d")).status).toBe(201);
  });

  it("answers 429 with a clear message once the tenant holds RECOVERY_MAX_COUNT wrappers", async () => {
    const { count } = await recoveryTotals(env.DB);
    const target = withVars({ RECOVERY_MAX_COUNT: String(count + 1) });
    expect((await put(target, newLocator(), "last one")).status).toBe(201);
    const locator = newLocator();
    const over = await put(target, locator, "one too many");
    expect(over.status).toBe(429);
    expect(await over.json()).toEqual({
      error: "rate_limited",
      message: `This server holds its limit of ${count + 1} recovery wrappers (RECOVERY_MAX_COUNT); none can be added now.`,
      limit: count + 1,
    });
    expect((await call(target, `/recovery/${locator}`)).status).toBe(404);
  });

  it("answers 413 when a wrapper would pass RECOVERY_MAX_BYTES, and stores nothing", async () => {
    const { bytes } = await recoveryTotals(env.DB);
    const target = withVars({ RECOVERY_MAX_BYTES: String(bytes + 10) });
    const locator = newLocator();
    const res = await put(target, locator, "eleven byte");
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({
      error: "payload_too_large",
      message: `Storing this wrapper would pass this server's recovery quota of ${bytes + 10} bytes (RECOVERY_MAX_BYTES; ${bytes} in use).`,
      limit: bytes + 10,
    });
    expect((await call(target, `/recovery/${locator}`)).status).toBe(404);
    expect((await put(target, locator, "ten bytes!")).status).toBe(201);
  });

  it("keeps the quota of a refused second write (409) and of the stored first one", async () => {
    const target = withVars({});
    const locator = newLocator();
    expect((await put(target, locator, "first")).status).toBe(201);
    const before = await recoveryTotals(env.DB);
    expect((await put(target, locator, "second")).status).toBe(409);
    expect(await recoveryTotals(env.DB)).toEqual(before);
  });
});

describe("recovery expiry and totals", () => {
  it("purges wrappers older than RECOVERY_TTL_DAYS in maintenance, body and row", async () => {
    const target = withVars({ RECOVERY_TTL_DAYS: "1" });
    const locator = newLocator();
    expect((await put(target, locator, "old")).status).toBe(201);
    const inTwoDays = Date.now() + 2 * 86_400_000;
    const report = await runMaintenance(target, "admin", inTwoDays);
    expect(report.recoveryWrappersPurged).toBeGreaterThanOrEqual(1);
    expect(report.errors).toEqual([]);
    expect((await call(target, `/recovery/${locator}`)).status).toBe(404);
    expect(await env.BUCKET.head(`r/${locator}`)).toBeNull();
  });

  it("keeps wrappers when RECOVERY_TTL_DAYS is unset", async () => {
    const target = withVars({});
    const locator = newLocator();
    expect((await put(target, locator, "kept")).status).toBe(201);
    const report = await runMaintenance(target, "admin", Date.now() + 3650 * 86_400_000);
    expect(report.recoveryWrappersPurged).toBe(0);
    expect((await call(target, `/recovery/${locator}`)).status).toBe(200);
  });

  it("reports count, bytes, quota and TTL at GET /sync/admin/recovery", async () => {
    const target = withVars({ ADMIN_TOKEN: "recovery-admin-token-0123456789", RECOVERY_TTL_DAYS: "30", RECOVERY_MAX_COUNT: "5000" });
    expect((await put(target, newLocator(), "12345")).status).toBe(201);
    const totals = await recoveryTotals(env.DB);
    const res = await call(target, "/admin/recovery", { headers: { Authorization: "Bearer recovery-admin-token-0123456789" } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ...totals, maxCount: 5000, maxBytes: 1024 * 1024 * 1024, ttlDays: 30 });
  });
});
