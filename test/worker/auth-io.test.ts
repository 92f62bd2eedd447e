// Auth on the mesh routes: session JWTs, mesh bearer, open mode, concealment, revocation delay.
// Denials are checked over HTTP through the real worker (auth runs before any handler);
// admissions through authorizeMesh itself, which is what the route guard calls.
import { env } from "cloudflare:test";
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import type { Env } from "../../worker/env";
import type { Access, Principal } from "../../worker/request-context";
import { authorizeMesh, meshBearerToken } from "../../worker/auth";
import { HttpError } from "../../worker/lib/errors";
import { insertSessionStatement } from "../../worker/identity/sessions";
import {
  MESH_SECRET,
  OLD_SIGNING_KEY,
  SIGNING_KEY,
  authEnv,
  bearer,
  call,
  craftToken,
  newKey,
  sessionFor,
  unsignedToken,
  uniqueMesh,
  type CraftedClaims,
} from "./auth-fixtures";

async function authorize(
  target: Env,
  meshId: string,
  access: Access,
  headers: Record<string, string> = {},
  path = `/sync/io/${meshId}/health`,
): Promise<Principal | HttpError> {
  try {
    return await authorizeMesh(new Request(`http://meshbox.test${path}`, { headers }), target, meshId, access);
  } catch (err) {
    if (err instanceof HttpError) return err;
    throw err;
  }
}

const putOther = (target: Env, mesh: string, headers: Record<string, string>) =>
  call(target, `/io/${mesh}/file?path=/App/x.bin`, { method: "PUT", headers, body: "x" });

/** A crafted token whose session row exists (so only the claim under test decides). */
async function recordedToken(claims: CraftedClaims, options: { secret?: string; kid?: string | null } = {}) {
  const key = await newKey("*");
  const jti = crypto.randomUUID();
  const iat = claims.iat ?? Math.floor(Date.now() / 1000);
  const exp = claims.exp ?? iat + 600;
  await insertSessionStatement(env.DB, {
    jti,
    keyId: key.id,
    subject: "device-1",
    meshPattern: typeof claims.mesh === "string" ? claims.mesh : "*",
    scope: claims.scope === "readonly" ? "readonly" : "full",
    issuedAt: iat * 1000,
    expiresAt: exp * 1000,
  }).run();
  return craftToken({ ...claims, jti, iat, exp }, options);
}

describe("GET /sync/io/<mesh>/health with a session token", () => {
  it("admits a valid session for reads and writes as a session principal", async () => {
    const mesh = uniqueMesh();
    const { session } = await sessionFor(authEnv(), mesh, "full", { subject: "laptop" });
    for (const access of ["read", "write"] as const) {
      const principal = await authorize(authEnv(), mesh, access, bearer(session.token));
      expect(principal).toEqual({
        kind: "session",
        scope: "full",
        sessionId: session.sessionId,
        subject: "laptop",
        expiresAt: Date.parse(session.expiresAt),
      });
    }
    const res = await call(authEnv(), `/io/${mesh}/health`, { headers: bearer(session.token) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, mesh });
    const put = await putOther(authEnv(), mesh, bearer(session.token));
    expect(put.status).toBe(201);
    const list = await call(authEnv(), `/io/${mesh}/list-files`, {
      method: "POST",
      headers: { ...bearer(session.token), "Content-Type": "application/json" },
      body: JSON.stringify({ path: "/App" }),
    });
    expect(list.status).toBe(200);
    expect((await list.json<{ files: { path: string }[] }>()).files.map((f) => f.path)).toEqual(["/App/x.bin"]);
  });

  it("admits a prefix session on every mesh with that prefix and no other", async () => {
    const prefix = `org-${crypto.randomUUID()}-`;
    const { session } = await sessionFor(authEnv(), `${prefix}*`);
    expect(await authorize(authEnv(), `${prefix}a`, "read", bearer(session.token))).toMatchObject({ kind: "session" });
    expect(await authorize(authEnv(), `${prefix}b`, "write", bearer(session.token))).toMatchObject({ kind: "session" });
    const other = await call(authEnv(), `/io/${uniqueMesh()}/health`, { headers: bearer(session.token) });
    expect(other.status).toBe(403);
  });

  it("refuses a readonly session's writes with 403 and admits its reads", async () => {
    const mesh = uniqueMesh();
    const { session } = await sessionFor(authEnv(), mesh, "readonly");
    expect(await authorize(authEnv(), mesh, "read", bearer(session.token))).toMatchObject({ scope: "readonly" });
    for (const init of [
      { method: "PUT", body: "x" },
      { method: "DELETE" },
    ]) {
      const res = await call(authEnv(), `/io/${mesh}/file?path=/App/x.bin`, { ...init, headers: bearer(session.token) });
      expect(res.status).toBe(403);
      expect(await res.json()).toEqual({ error: "forbidden", message: "This session is read-only." });
    }
    const stored = await call(authEnv(), `/io/${mesh}/stored-file?path=/files/a`, {
      method: "PUT",
      headers: bearer(session.token),
      body: "x",
    });
    expect(stored.status).toBe(403);
  });

  it("refuses a token for mesh A on mesh B with 403", async () => {
    const meshA = uniqueMesh();
    const { session } = await sessionFor(authEnv(), meshA);
    const res = await call(authEnv(), `/io/${uniqueMesh()}/health`, { headers: bearer(session.token) });
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ error: "forbidden", message: "This session is not valid for this mesh." });
  });

  it("refuses a missing token with 401 and a Bearer challenge", async () => {
    const res = await call(authEnv(), `/io/${uniqueMesh()}/health`);
    expect(res.status).toBe(401);
    expect(res.headers.get("WWW-Authenticate")).toBe("Bearer");
    expect(await res.json()).toEqual({
      error: "unauthorized",
      message: "This mesh needs a bearer token (Authorization: Bearer <token>).",
    });
  });

  it("checks the mesh id before auth", async () => {
    const res = await call(authEnv(), "/io/-bad/health");
    expect(res.status).toBe(400);
    expect((await res.json<{ error: string }>()).error).toBe("invalid_mesh_id");
  });

  const now = () => Math.floor(Date.now() / 1000);
  const invalid: [string, () => Promise<string>][] = [
    ["an expired token", () => recordedToken({ iat: now() - 7_200, exp: now() - 3_600 })],
    ["a token expired beyond the clock tolerance", () => recordedToken({ iat: now() - 600, exp: now() - 31 })],
    ["a not-yet-valid token (nbf)", () => recordedToken({ nbf: now() + 600 })],
    ["a token issued in the future", () => recordedToken({ iat: now() + 600, exp: now() + 1_200 })],
    ["a wrong-audience token", () => recordedToken({ aud: "someone-else" })],
    ["a wrong-issuer token", () => recordedToken({ iss: "other-tenant" })],
    ["an unknown-kid token", () => recordedToken({}, { kid: "0123456789abcdef" })],
    ["a token without a kid", () => recordedToken({}, { kid: null })],
    ["an HS512 token under our kid", async () => {
      const ours = await recordedToken({});
      const payload = JSON.parse(atob(ours.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/")));
      const header = JSON.parse(atob(ours.split(".")[0]!.replace(/-/g, "+").replace(/_/g, "/")));
      return new SignJWT(payload).setProtectedHeader({ ...header, alg: "HS512" }).sign(new TextEncoder().encode(SIGNING_KEY));
    }],
    ["a token signed with another key under our kid", async () => {
      const ours = await craftToken({});
      const kid = JSON.parse(atob(ours.split(".")[0]!.replace(/-/g, "+").replace(/_/g, "/"))).kid as string;
      return recordedToken({}, { secret: "an-attacker-key-0123456789abcdef-xyz", kid });
    }],
    ["an alg none token", async () => unsignedToken({
      iss: "local", aud: "meshbox", sub: "d", mesh: "*", scope: "full", jti: crypto.randomUUID(), iat: now(), exp: now() + 600,
    })],
    ["a tampered-signature token", async () => {
      const token = await recordedToken({});
      const last = token.at(-2) === "A" ? "B" : "A";
      return `${token.slice(0, -2)}${last}${token.at(-1)}`;
    }],
    ["a tampered-payload token", async () => {
      const token = await recordedToken({ scope: "readonly" });
      const [h, p, s] = token.split(".");
      const payload = JSON.parse(atob(p!.replace(/-/g, "+").replace(/_/g, "/")));
      payload.scope = "full";
      const forged = btoa(JSON.stringify(payload)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
      return `${h}.${forged}.${s}`;
    }],
    ["a token with a bad mesh claim", () => recordedToken({ mesh: "bad mesh" })],
    ["a token with a bad scope claim", () => recordedToken({ scope: "admin" })],
    ["a session that was never recorded", () => craftToken({})],
  ];
  for (const [name, make] of invalid) {
    it(`refuses ${name} with 401`, async () => {
      const res = await call(authEnv(), `/io/${uniqueMesh()}/health`, { headers: bearer(await make()) });
      expect(res.status).toBe(401);
      expect(res.headers.get("WWW-Authenticate")).toBe("Bearer");
      expect((await res.json<{ error: string }>()).error).toBe("unauthorized");
    });
  }

  it("accepts a token that expired within the clock tolerance", async () => {
    const mesh = uniqueMesh();
    const token = await recordedToken({ mesh, iat: now() - 600, exp: now() - 5 });
    expect(await authorize(authEnv(), mesh, "read", bearer(token))).toMatchObject({ kind: "session" });
  });
});

describe("session signing key rotation", () => {
  it("accepts old-key tokens while the old key is the previous key, and refuses them once dropped", async () => {
    const mesh = uniqueMesh();
    const before = authEnv({ SESSION_SIGNING_KEY: OLD_SIGNING_KEY });
    const { session: old } = await sessionFor(before, mesh);
    const rotated = authEnv({ SESSION_SIGNING_KEY: SIGNING_KEY, SESSION_SIGNING_KEY_PREVIOUS: OLD_SIGNING_KEY });
    const { session: fresh } = await sessionFor(rotated, mesh);
    expect(await authorize(rotated, mesh, "write", bearer(old.token))).toMatchObject({ sessionId: old.sessionId });
    expect(await authorize(rotated, mesh, "write", bearer(fresh.token))).toMatchObject({ sessionId: fresh.sessionId });

    const after = authEnv({ SESSION_SIGNING_KEY: SIGNING_KEY });
    const res = await call(after, `/io/${mesh}/health`, { headers: bearer(old.token) });
    expect(res.status).toBe(401);
    expect(await authorize(after, mesh, "read", bearer(fresh.token))).toMatchObject({ sessionId: fresh.sessionId });
  });

  it("refuses an old-key token after it expires even during rotation", async () => {
    const mesh = uniqueMesh();
    const now = Math.floor(Date.now() / 1000);
    const token = await recordedToken({ mesh, iat: now - 7_200, exp: now - 3_600 }, { secret: OLD_SIGNING_KEY });
    const rotated = authEnv({ SESSION_SIGNING_KEY: SIGNING_KEY, SESSION_SIGNING_KEY_PREVIOUS: OLD_SIGNING_KEY });
    expect((await call(rotated, `/io/${mesh}/health`, { headers: bearer(token) })).status).toBe(401);
  });
});

describe("GET /sync/io/<mesh>/health with a mesh bearer token", () => {
  const bearerEnv = () => authEnv({ SESSION_SIGNING_KEY: undefined, MESH_TOKEN_SECRET: MESH_SECRET });

  it("admits the right token with full access", async () => {
    const mesh = uniqueMesh();
    const token = await meshBearerToken(mesh, MESH_SECRET);
    const res = await call(bearerEnv(), `/io/${mesh}/health`, { headers: bearer(token) });
    expect(res.status).toBe(200);
    expect((await putOther(bearerEnv(), mesh, bearer(token))).status).toBe(201);
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect(await authorize(bearerEnv(), mesh, "write", bearer(token))).toEqual({
      kind: "bearer",
      scope: "full",
      sessionId: null,
      subject: null,
      expiresAt: null,
    });
  });

  it("refuses a wrong token, another mesh's token and an uppercased token with 401", async () => {
    const mesh = uniqueMesh();
    const right = await meshBearerToken(mesh, MESH_SECRET);
    for (const token of ["0".repeat(64), await meshBearerToken(uniqueMesh(), MESH_SECRET), right.toUpperCase(), right.slice(1)]) {
      const res = await call(bearerEnv(), `/io/${mesh}/health`, { headers: bearer(token) });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: "unauthorized" });
    }
  });

  it("tries both modes when both are configured", async () => {
    const mesh = uniqueMesh();
    const both = authEnv({ MESH_TOKEN_SECRET: MESH_SECRET });
    const { session } = await sessionFor(both, mesh);
    expect(await authorize(both, mesh, "write", bearer(session.token))).toMatchObject({ kind: "session" });
    expect(await authorize(both, mesh, "write", bearer(await meshBearerToken(mesh, MESH_SECRET)))).toMatchObject({ kind: "bearer" });
  });

  it("does not accept a mesh bearer token when only sessions are configured", async () => {
    const mesh = uniqueMesh();
    const res = await call(authEnv(), `/io/${mesh}/health`, { headers: bearer(await meshBearerToken(mesh, MESH_SECRET)) });
    expect(res.status).toBe(401);
  });
});

describe("the access_token query parameter", () => {
  it("is accepted on the notify WebSocket route", async () => {
    const mesh = uniqueMesh();
    const { session } = await sessionFor(authEnv(), mesh);
    const principal = await authorize(authEnv(), mesh, "read", {}, `/sync/notify/${mesh}?access_token=${session.token}`);
    expect(principal).toMatchObject({ kind: "session", sessionId: session.sessionId });
  });

  it("is ignored on every other route", async () => {
    const mesh = uniqueMesh();
    const { session } = await sessionFor(authEnv(), mesh);
    for (const path of [`/io/${mesh}/health?access_token=${session.token}`, `/notify/${mesh}/health?access_token=${session.token}`]) {
      const res = await call(authEnv(), path);
      expect(res.status, path).toBe(401);
    }
  });
});

describe("auth configuration", () => {
  it("answers 503 auth_not_configured naming the secrets when no mode is configured", async () => {
    const res = await call(authEnv({ SESSION_SIGNING_KEY: undefined }), `/io/${uniqueMesh()}/health`);
    expect(res.status).toBe(503);
    const body = await res.json<{ error: string; message: string }>();
    expect(body.error).toBe("auth_not_configured");
    expect(body.message).toContain("SESSION_SIGNING_KEY");
    expect(body.message).toContain("MESH_TOKEN_SECRET");
  });

  it("admits requests without a credential in open mode, as open principals", async () => {
    const open = authEnv({ ALLOW_OPEN_ACCESS: "1", SESSION_SIGNING_KEY: undefined });
    const mesh = uniqueMesh();
    const openPrincipal = { kind: "open", scope: "full", sessionId: null, subject: null, expiresAt: null };
    expect(await authorize(open, mesh, "write")).toEqual(openPrincipal);
  });

  it("answers 401 in open mode when a credential is presented but invalid", async () => {
    const mesh = uniqueMesh();
    for (const vars of [{ SESSION_SIGNING_KEY: undefined }, {}, { MESH_TOKEN_SECRET: MESH_SECRET }] as Partial<Env>[]) {
      const open = authEnv({ ALLOW_OPEN_ACCESS: "1", ...vars });
      for (const token of ["garbage", "stale-token", "a".repeat(64), await craftToken({ mesh }, { secret: "x".repeat(40) })]) {
        const res = await call(open, `/io/${mesh}/health`, { headers: bearer(token) });
        expect(res.status).toBe(401);
        expect(res.headers.get("WWW-Authenticate")).toBe("Bearer");
        expect((await res.json<{ error: string }>()).error).toBe("unauthorized");
      }
    }
  });

  it("keeps a valid session's limits in open mode", async () => {
    const open = authEnv({ ALLOW_OPEN_ACCESS: "1" });
    const mesh = uniqueMesh();
    const { session } = await sessionFor(open, mesh, "readonly");
    expect(await authorize(open, mesh, "read", bearer(session.token))).toMatchObject({ kind: "session" });
    expect((await putOther(open, mesh, bearer(session.token))).status).toBe(403);
  });
});

describe("a session token bound to its D1 record", () => {
  it("refuses a token re-signed with a live jti but a wider mesh or scope than its record", async () => {
    const mesh = uniqueMesh();
    const { session } = await sessionFor(authEnv(), mesh, "readonly");
    const minted = { sub: "device-1", jti: session.sessionId, exp: Math.floor(Date.parse(session.expiresAt) / 1000) };
    const wider = await craftToken({ ...minted, mesh: "*", scope: "readonly" });
    const fuller = await craftToken({ ...minted, mesh, scope: "full" });
    for (const token of [wider, fuller]) {
      const res = await call(authEnv(), `/io/${mesh}/health`, { headers: bearer(token) });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ error: "unauthorized", message: "The session has been revoked." });
    }
    // The token the server signed, with the record's own mesh and scope, still passes.
    expect((await call(authEnv(), `/io/${mesh}/health`, { headers: bearer(session.token) })).status).toBe(200);
  });

  it("reads the record once per revocation-cache window, for the genuine and the re-signed token alike", async () => {
    const mesh = uniqueMesh();
    const { session } = await sessionFor(authEnv(), mesh, "full");
    let reads = 0;
    const counting = new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "prepare") {
          return (sql: string) => {
            if (sql.includes("FROM sessions WHERE jti")) reads++;
            return target.prepare(sql);
          };
        }
        const value = Reflect.get(target, prop);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const cached = authEnv({ DB: counting as D1Database, REVOCATION_CACHE_MS: "600000" });
    const forged = await craftToken({ sub: "device-1", jti: session.sessionId, mesh: "*", scope: "full" });
    for (let i = 0; i < 3; i++) {
      expect(await authorize(cached, mesh, "write", bearer(session.token))).toMatchObject({ kind: "session" });
      expect(await authorize(cached, mesh, "write", bearer(forged))).toMatchObject({ status: 401 });
    }
    expect(reads).toBe(1);
  });
});

describe("CONCEAL_DENIED=1", () => {
  const concealed = (vars: Partial<Env> = {}) => authEnv({ CONCEAL_DENIED: "1", MESH_TOKEN_SECRET: MESH_SECRET, ...vars });
  const NOT_FOUND = { error: "not_found", message: "Not found." };

  it("answers every denial with the same 404 and no challenge", async () => {
    const meshA = uniqueMesh();
    const meshB = uniqueMesh();
    const { session } = await sessionFor(concealed(), meshA);
    const { session: readonly } = await sessionFor(concealed(), meshB, "readonly");
    const denied: [string, Promise<Response>][] = [
      ["no token", call(concealed(), `/io/${meshB}/health`)],
      ["garbage token", call(concealed(), `/io/${meshB}/health`, { headers: bearer("garbage") })],
      ["wrong bearer", call(concealed(), `/io/${meshB}/health`, { headers: bearer("0".repeat(64)) })],
      ["another mesh's session", call(concealed(), `/io/${meshB}/health`, { headers: bearer(session.token) })],
      ["readonly write", putOther(concealed(), meshB, bearer(readonly.token))],
      ["list-files without a token", call(concealed(), `/io/${meshB}/list-files`, { method: "POST", body: '{"path":"/"}' })],
    ];
    for (const [name, pending] of denied) {
      const res = await pending;
      expect(res.status, name).toBe(404);
      expect(res.headers.get("WWW-Authenticate"), name).toBeNull();
      expect(await res.json(), name).toEqual(NOT_FOUND);
    }
  });

  it("still admits valid credentials", async () => {
    const mesh = uniqueMesh();
    expect(await authorize(concealed(), mesh, "write", bearer(await meshBearerToken(mesh, MESH_SECRET)))).toMatchObject({
      kind: "bearer",
    });
  });

  it("does not hide invalid mesh ids or missing configuration", async () => {
    expect((await call(concealed(), "/io/-x/health")).status).toBe(400);
    const unconfigured = concealed({ SESSION_SIGNING_KEY: undefined, MESH_TOKEN_SECRET: undefined });
    expect((await call(unconfigured, `/io/${uniqueMesh()}/health`)).status).toBe(503);
  });
});

describe("session revocation over HTTP", () => {
  it("answers 503, not 401 or 500, when the revocation check cannot reach D1", async () => {
    const mesh = uniqueMesh();
    const { session } = await sessionFor(authEnv(), mesh);
    const failing = new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "prepare") return () => { throw new Error("D1_ERROR: simulated outage"); };
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const res = await call(authEnv({ DB: failing, REVOCATION_CACHE_MS: "0" }), `/io/${mesh}/health`, {
      headers: bearer(session.token),
    });
    expect(res.status).toBe(503);
    expect((await res.json<{ error: string }>()).error).toBe("unavailable");
  });

  it("takes effect within REVOCATION_CACHE_MS when another isolate revokes", async () => {
    const mesh = uniqueMesh();
    const target = authEnv({ REVOCATION_CACHE_MS: "300" });
    const { session } = await sessionFor(target, mesh);
    expect(await authorize(target, mesh, "read", bearer(session.token))).toMatchObject({ kind: "session" });
    // Another isolate's revocation only reaches this one through D1, not through its cache.
    await env.DB.prepare("UPDATE sessions SET revoked_at = ? WHERE jti = ?").bind(Date.now(), session.sessionId).run();
    const revokedAt = Date.now();
    let status = 0;
    while (Date.now() - revokedAt < 3_000) {
      status = (await call(target, `/io/${mesh}/health`, { headers: bearer(session.token) })).status;
      if (status === 401) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(status).toBe(401);
    expect(Date.now() - revokedAt).toBeLessThan(300 + 1_000);
  });

  it("keeps serving a cached live verdict within the documented delay", async () => {
    const mesh = uniqueMesh();
    const target = authEnv({ REVOCATION_CACHE_MS: "60000" });
    const { session } = await sessionFor(target, mesh);
    expect(await authorize(target, mesh, "read", bearer(session.token))).toMatchObject({ kind: "session" });
    await env.DB.prepare("UPDATE sessions SET revoked_at = ? WHERE jti = ?").bind(Date.now(), session.sessionId).run();
    expect(await authorize(target, mesh, "read", bearer(session.token))).toMatchObject({ kind: "session" });
  });
});
