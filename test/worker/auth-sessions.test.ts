import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { getApiKey, revokeApiKey } from "../../worker/identity/api-keys";
import { findSession } from "../../worker/identity/sessions";
import {
  authEnv,
  bearer,
  call,
  decodePayload,
  mintSession,
  newKey,
  sessionFor,
  uniqueIp,
  uniqueMesh,
} from "./auth-fixtures";

const post = (target = authEnv(), apiKey: string | null, body?: string, headers: Record<string, string> = {}) =>
  call(target, "/auth/session", {
    method: "POST",
    headers: { ...(apiKey === null ? {} : bearer(apiKey)), "CF-Connecting-IP": uniqueIp(), ...headers },
    body,
  });

describe("POST /sync/auth/session", () => {
  it("exchanges an API key for a session token with the key's grant", async () => {
    const mesh = uniqueMesh();
    const key = await newKey(mesh);
    const before = Date.now();
    const res = await post(authEnv(), key.key);
    expect(res.status).toBe(201);
    expect(res.headers.get("Content-Type")).toBe("application/json");
    expect(res.headers.get("Cache-Control")).toBe("no-store");
    const body = await res.json<Record<string, unknown>>();
    expect(Object.keys(body).sort()).toEqual(["expiresAt", "mesh", "scope", "sessionId", "token", "tokenType"]);
    expect(body).toMatchObject({ tokenType: "Bearer", mesh, scope: "full" });
    const expiresAt = Date.parse(body.expiresAt as string);
    expect(expiresAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 3_600_000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 3_600_000);

    const claims = decodePayload(body.token as string);
    expect(claims).toMatchObject({
      iss: "local",
      aud: "meshbox",
      sub: `key:${key.id}`,
      mesh,
      scope: "full",
      jti: body.sessionId,
    });
    expect((claims.exp as number) - (claims.iat as number)).toBe(3_600);
  });

  it("records the session and the key's last use", async () => {
    const mesh = uniqueMesh();
    const key = await newKey(mesh);
    const session = await mintSession(authEnv(), key.key, { subject: "laptop" });
    const row = await findSession(env.DB, session.sessionId);
    expect(row).toMatchObject({
      jti: session.sessionId,
      keyId: key.id,
      subject: "laptop",
      meshPattern: mesh,
      scope: "full",
      expiresAt: session.expiresAt,
      revokedAt: null,
    });
    expect((await getApiKey(env.DB, key.id))?.lastUsedAt).not.toBeNull();
  });

  it("narrows the mesh, scope, subject and lifetime on request", async () => {
    const prefix = `team-${crypto.randomUUID()}-`;
    const key = await newKey(`${prefix}*`);
    const mesh = `${prefix}notes`;
    const res = await post(authEnv(), key.key, JSON.stringify({ mesh, scope: "readonly", subject: "phone", ttlSeconds: 60 }));
    expect(res.status).toBe(201);
    const body = await res.json<{ token: string; mesh: string; scope: string; expiresAt: string }>();
    expect(body).toMatchObject({ mesh, scope: "readonly" });
    const claims = decodePayload(body.token);
    expect(claims).toMatchObject({ sub: "phone", mesh, scope: "readonly" });
    expect((claims.exp as number) - (claims.iat as number)).toBe(60);
  });

  it("refuses to widen the key's mesh, scope or lifetime with 403", async () => {
    const mesh = uniqueMesh();
    const key = await newKey(mesh, "readonly");
    for (const body of [{ mesh: uniqueMesh() }, { mesh: "*" }, { mesh: `${mesh}*` }, { scope: "full" }, { ttlSeconds: 3_601 }]) {
      const res = await post(authEnv(), key.key, JSON.stringify(body));
      expect(res.status, JSON.stringify(body)).toBe(403);
      expect((await res.json<{ error: string }>()).error).toBe("forbidden");
    }
  });

  it("answers 400 for a malformed body", async () => {
    const key = await newKey(uniqueMesh());
    const bodies = [
      "{not json",
      "[]",
      JSON.stringify({ mesh: "bad mesh!" }),
      JSON.stringify({ scope: "admin" }),
      JSON.stringify({ subject: "" }),
      JSON.stringify({ ttlSeconds: 0 }),
      JSON.stringify({ ttlSeconds: 1.5 }),
      JSON.stringify({ ttlSeconds: "60" }),
    ];
    for (const body of bodies) {
      const res = await post(authEnv(), key.key, body);
      expect(res.status, body).toBe(400);
      expect((await res.json<{ error: string }>()).error).toBe("bad_request");
    }
  });

  it("answers 401 with a Bearer challenge without a key, or for an unknown key", async () => {
    for (const apiKey of [null, "mbk_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "nonsense"]) {
      const res = await post(authEnv(), apiKey);
      expect(res.status).toBe(401);
      expect(res.headers.get("WWW-Authenticate")).toBe("Bearer");
      const body = await res.json<{ error: string; message: string }>();
      expect(body.error).toBe("unauthorized");
      if (apiKey !== null) expect(body.message).not.toContain(apiKey);
    }
  });

  it("refuses a revoked API key", async () => {
    const key = await newKey(uniqueMesh());
    await mintSession(authEnv(), key.key);
    expect(await revokeApiKey(env, key.id)).toMatchObject({ id: key.id, sessionsRevoked: 1 });
    const res = await post(authEnv(), key.key);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: "unauthorized", message: "The API key is invalid or revoked." });
  });

  it("answers 503 auth_not_configured without a session signing key", async () => {
    const key = await newKey(uniqueMesh());
    const res = await post(authEnv({ SESSION_SIGNING_KEY: undefined }), key.key);
    expect(res.status).toBe(503);
    const body = await res.json<{ error: string; message: string }>();
    expect(body.error).toBe("auth_not_configured");
    expect(body.message).toContain("SESSION_SIGNING_KEY");
  });

  it("answers 503 for a signing key too short for HS256", async () => {
    const key = await newKey(uniqueMesh());
    const res = await post(authEnv({ SESSION_SIGNING_KEY: "short" }), key.key);
    expect(res.status).toBe(503);
    expect((await res.json<{ error: string }>()).error).toBe("auth_not_configured");
  });

  it("answers 503 unavailable, without a token, when D1 fails to record the session", async () => {
    const key = await newKey(uniqueMesh());
    const failing = new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "batch") return () => Promise.reject(new Error("D1_ERROR: simulated outage"));
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const res = await post(authEnv({ DB: failing }), key.key);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({
      error: "unavailable",
      message: "Session storage is temporarily unavailable; retry shortly.",
    });
  });

  it("signs with the tenant as issuer", async () => {
    const key = await newKey(uniqueMesh());
    const session = await mintSession(authEnv({ TENANT: "acme" }), key.key);
    expect(decodePayload(session.token).iss).toBe("acme");
  });
});

describe("DELETE /sync/auth/session", () => {
  it("revokes the presented session: 204, then the token is refused", async () => {
    const mesh = uniqueMesh();
    const target = authEnv();
    const { session } = await sessionFor(target, mesh);
    expect((await call(target, `/io/${mesh}/health`, { headers: bearer(session.token) })).status).toBe(200);

    const res = await call(target, "/auth/session", { method: "DELETE", headers: bearer(session.token) });
    expect(res.status).toBe(204);
    expect(await res.text()).toBe("");
    expect((await findSession(env.DB, session.sessionId))?.revokedAt).not.toBeNull();

    const after = await call(target, `/io/${mesh}/health`, { headers: bearer(session.token) });
    expect(after.status).toBe(401);
    expect(await after.json()).toEqual({ error: "unauthorized", message: "The session has been revoked." });
    const again = await call(target, "/auth/session", { method: "DELETE", headers: bearer(session.token) });
    expect(again.status).toBe(401);
  });

  it("answers 401 without a session token, or with an API key instead of one", async () => {
    const key = await newKey(uniqueMesh());
    for (const headers of [{}, bearer(key.key)]) {
      const res = await call(authEnv(), "/auth/session", { method: "DELETE", headers });
      expect(res.status).toBe(401);
      expect(res.headers.get("WWW-Authenticate")).toBe("Bearer");
    }
  });
});

describe("PUT /sync/auth/session", () => {
  it("answers 405 with Allow", async () => {
    const res = await call(authEnv(), "/auth/session", { method: "PUT" });
    expect(res.status).toBe(405);
    expect(res.headers.get("Allow")).toBe("POST, DELETE");
  });
});
