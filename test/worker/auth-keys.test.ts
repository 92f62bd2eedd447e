// API keys and sessions at the storage level (what the admin API calls), the admin guard, and
// the secret helpers.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { MeshRequest } from "../../worker/request-context";
import { requireAdmin } from "../../worker/auth";
import { HttpError } from "../../worker/lib/errors";
import { constantTimeEqual, sha256Hex } from "../../worker/lib/secrets";
import { createApiKey, findLiveApiKey, getApiKey, listApiKeys, revokeApiKey } from "../../worker/identity/api-keys";
import { deleteExpiredSessions, findSession, insertSessionStatement, listSessions, revokeSession } from "../../worker/identity/sessions";
import { ADMIN_TOKEN, authEnv, bearer, call, mintSession, newKey, sessionFor, uniqueMesh } from "./auth-fixtures";

function adminVerdict(headers: Record<string, string>, vars = {}): HttpError | null {
  const request = new Request("http://meshbox.test/sync/admin/keys", { headers }) as unknown as MeshRequest;
  try {
    requireAdmin(request, authEnv({ ADMIN_TOKEN, ...vars }), {} as ExecutionContext);
    return null;
  } catch (err) {
    if (err instanceof HttpError) return err;
    throw err;
  }
}

describe("the admin guard (requireAdmin)", () => {
  it("admits Authorization: Bearer <ADMIN_TOKEN>", () => {
    expect(adminVerdict(bearer(ADMIN_TOKEN))).toBeNull();
  });

  it("refuses a missing, wrong or prefixed token with 401", () => {
    for (const headers of [{}, bearer("wrong"), bearer(`${ADMIN_TOKEN}x`), bearer(ADMIN_TOKEN.slice(1)), { Authorization: ADMIN_TOKEN }]) {
      const verdict = adminVerdict(headers);
      expect(verdict?.status, JSON.stringify(headers)).toBe(401);
      expect(verdict?.code).toBe("unauthorized");
    }
  });

  it("answers 503 when ADMIN_TOKEN is unset", () => {
    const verdict = adminVerdict(bearer(ADMIN_TOKEN), { ADMIN_TOKEN: undefined });
    expect(verdict?.status).toBe(503);
    expect(verdict?.message).toContain("ADMIN_TOKEN");
  });

  it("guards the admin routes over HTTP", async () => {
    const res = await call(authEnv({ ADMIN_TOKEN }), "/admin/keys", { headers: bearer("wrong") });
    expect(res.status).toBe(401);
    expect(res.headers.get("WWW-Authenticate")).toBe("Bearer");
    const unset = await call(authEnv(), "/admin/keys", { headers: bearer(ADMIN_TOKEN) });
    expect(unset.status).toBe(503);
  });
});

describe("createApiKey", () => {
  it("returns the key once and stores only its hash", async () => {
    const mesh = uniqueMesh();
    const created = await createApiKey(env.DB, { name: "ci", meshPattern: mesh, access: "readonly" });
    expect(created.key).toMatch(/^mbk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(created.key.startsWith(`mbk_${created.id}_`)).toBe(true);
    expect(created).toMatchObject({ name: "ci", meshPattern: mesh, access: "readonly", lastUsedAt: null, revokedAt: null });
    const row = await env.DB.prepare("SELECT * FROM api_keys WHERE id = ?").bind(created.id).first<Record<string, unknown>>();
    expect(JSON.stringify(row)).not.toContain(created.key.split("_")[2]);
    expect(row?.key_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(await findLiveApiKey(env.DB, created.key)).toMatchObject({ id: created.id });
    const { key: _key, ...record } = created;
    expect(await getApiKey(env.DB, created.id)).toEqual(record);
  });

  it("refuses bad input with 400", async () => {
    const bad = [
      { name: "", meshPattern: "m", access: "full" },
      { name: "x".repeat(201), meshPattern: "m", access: "full" },
      { name: "n", meshPattern: "bad mesh", access: "full" },
      { name: "n", meshPattern: "m", access: "admin" },
    ];
    for (const input of bad) {
      await expect(createApiKey(env.DB, input as never)).rejects.toMatchObject({ status: 400, code: "bad_request" });
    }
  });
});

describe("listApiKeys", () => {
  it("lists keys without their secrets", async () => {
    const created = await newKey(uniqueMesh());
    const listed = (await listApiKeys(env.DB)).find((k) => k.id === created.id);
    expect(listed).toEqual({
      id: created.id,
      name: created.name,
      meshPattern: created.meshPattern,
      access: "full",
      createdAt: created.createdAt,
      lastUsedAt: null,
      revokedAt: null,
    });
    expect(JSON.stringify(await listApiKeys(env.DB))).not.toContain(created.key);
  });
});

describe("revokeApiKey", () => {
  it("revokes the key and every session it minted, and is idempotent", async () => {
    const mesh = uniqueMesh();
    const target = authEnv();
    const key = await newKey(mesh);
    const one = await mintSession(target, key.key);
    const two = await mintSession(target, key.key);
    const revoked = await revokeApiKey(env, key.id);
    expect(revoked).toMatchObject({ id: key.id, sessionsRevoked: 2 });
    expect(revoked?.revokedAt).not.toBeNull();
    for (const s of [one, two]) {
      expect((await findSession(env.DB, s.sessionId))?.revokedAt).not.toBeNull();
      expect((await call(target, `/io/${mesh}/health`, { headers: bearer(s.token) })).status).toBe(401);
    }
    expect(await findLiveApiKey(env.DB, key.key)).toBeNull();
    const again = await revokeApiKey(env, key.id);
    expect(again).toMatchObject({ revokedAt: revoked?.revokedAt, sessionsRevoked: 0 });
  });

  it("answers null for an unknown key", async () => {
    expect(await revokeApiKey(env, "0000000000000000")).toBeNull();
  });

  it("never records a session for a key revoked before the insert", async () => {
    const key = await newKey(uniqueMesh());
    await revokeApiKey(env, key.id);
    const jti = crypto.randomUUID();
    const result = await insertSessionStatement(env.DB, {
      jti, keyId: key.id, subject: "s", meshPattern: "*", scope: "full", issuedAt: Date.now(), expiresAt: Date.now() + 60_000,
    }).run();
    expect(result.meta.changes).toBe(0);
    expect(await findSession(env.DB, jti)).toBeNull();
  });
});

describe("listSessions", () => {
  it("lists live sessions, optionally those reaching a mesh pattern", async () => {
    const prefix = `ls-${crypto.randomUUID()}-`;
    const target = authEnv();
    const { session: exact } = await sessionFor(target, `${prefix}a`);
    const { session: wide } = await sessionFor(target, `${prefix}*`);
    const { session: elsewhere } = await sessionFor(target, uniqueMesh());

    const forA = (await listSessions(env.DB, { meshPattern: `${prefix}a` })).map((s) => s.jti);
    expect(forA).toContain(exact.sessionId);
    expect(forA).toContain(wide.sessionId);
    expect(forA).not.toContain(elsewhere.sessionId);
    const forPrefix = (await listSessions(env.DB, { meshPattern: `${prefix}*` })).map((s) => s.jti).sort();
    expect(forPrefix).toEqual([exact.sessionId, wide.sessionId].sort());
    const all = (await listSessions(env.DB)).map((s) => s.jti);
    expect(all).toEqual(expect.arrayContaining([exact.sessionId, wide.sessionId, elsewhere.sessionId]));
  });

  it("refuses a bad pattern with 400", async () => {
    await expect(listSessions(env.DB, { meshPattern: "a b" })).rejects.toMatchObject({ status: 400 });
  });
});

describe("revokeSession", () => {
  it("revokes one session, keeps the first revocation time, and answers null for an unknown one", async () => {
    const mesh = uniqueMesh();
    const target = authEnv();
    const { session } = await sessionFor(target, mesh);
    const first = await revokeSession(env, session.sessionId);
    expect(first).toMatchObject({ jti: session.sessionId, meshPattern: mesh });
    expect(first?.revokedAt).not.toBeNull();
    expect((await revokeSession(env, session.sessionId))?.revokedAt).toBe(first?.revokedAt);
    expect((await call(target, `/io/${mesh}/health`, { headers: bearer(session.token) })).status).toBe(401);
    expect(await revokeSession(env, crypto.randomUUID())).toBeNull();
  });
});

describe("deleteExpiredSessions", () => {
  it("deletes sessions expired for over a minute and keeps the rest", async () => {
    const key = await newKey("*");
    const now = Date.now();
    const rows = [
      { jti: crypto.randomUUID(), expiresAt: now - 120_000 },
      { jti: crypto.randomUUID(), expiresAt: now - 10_000 },
      { jti: crypto.randomUUID(), expiresAt: now + 60_000 },
    ];
    for (const row of rows) {
      await insertSessionStatement(env.DB, {
        jti: row.jti, keyId: key.id, subject: "s", meshPattern: "*", scope: "full", issuedAt: now - 200_000, expiresAt: row.expiresAt,
      }).run();
    }
    expect(await deleteExpiredSessions(env.DB, now)).toBeGreaterThanOrEqual(1);
    expect(await findSession(env.DB, rows[0]!.jti)).toBeNull();
    expect(await findSession(env.DB, rows[1]!.jti)).not.toBeNull();
    expect(await findSession(env.DB, rows[2]!.jti)).not.toBeNull();
  });
});

describe("secret helpers", () => {
  it("compares in constant time and only equal strings are equal", () => {
    expect(constantTimeEqual("abc", "abc")).toBe(true);
    expect(constantTimeEqual("abc", "abd")).toBe(false);
    expect(constantTimeEqual("abc", "abcd")).toBe(false);
    expect(constantTimeEqual("", "")).toBe(true);
  });

  it("hashes as lowercase hex SHA-256", async () => {
    expect(await sha256Hex("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });
});
