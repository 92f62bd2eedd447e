// Identity-provider tokens verified against an inline JWKS (AUTH_JWKS), mesh access from the
// claim and the grants table, and /sync/health naming the configured modes. The remote JWKS
// (AUTH_JWKS_URL, rotation) is exercised end to end in test/e2e/auth-idp.test.ts.
import { env } from "cloudflare:test";
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import type { Env } from "../../worker/env";
import { createGrant } from "../../worker/identity/grants";
import { MESH_SECRET, authEnv, bearer, call, uniqueMesh } from "./auth-fixtures";

const ISSUER = "https://tenant.example-idp.test/";
const AUDIENCE = "https://sync.example.test";
let privateKey: CryptoKey;
let jwks: string;

beforeAll(async () => {
  const pair = await generateKeyPair("ES256", { extractable: true });
  privateKey = pair.privateKey;
  jwks = JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "ES256", use: "sig" }] });
});

const idpEnv = (vars: Partial<Env> = {}) =>
  authEnv({ AUTH_JWKS: jwks, AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE, REVOCATION_CACHE_MS: "0", ...vars });

async function idToken(claims: Record<string, unknown>, options: { iss?: string; aud?: string; exp?: number | null } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ sub: `user-${crypto.randomUUID()}`, ...claims })
    .setProtectedHeader({ alg: "ES256", kid: "k1" })
    .setIssuer(options.iss ?? ISSUER)
    .setAudience(options.aud ?? AUDIENCE)
    .setIssuedAt(now);
  if (options.exp !== null) jwt.setExpirationTime(options.exp ?? now + 600);
  return jwt.sign(privateKey);
}

const health = (target: Env, mesh: string, token: string) => call(target, `/io/${mesh}/health`, { headers: bearer(token) });
const put = (target: Env, mesh: string, token: string) =>
  call(target, `/io/${mesh}/file?path=/App/x.bin`, { method: "PUT", headers: bearer(token), body: "x" });

describe("GET /sync/health names the configured auth modes", () => {
  it("lists every configured mode by name and never a secret", async () => {
    const res = await call(idpEnv({ MESH_TOKEN_SECRET: MESH_SECRET }), "/health");
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ ok: true, service: "meshbox", auth: ["session", "idp", "bearer"] });
    expect(text).not.toContain(MESH_SECRET);
  });

  it("answers 503 auth_not_configured when no mode is configured and open access is off", async () => {
    const res = await call(authEnv({ SESSION_SIGNING_KEY: undefined }), "/health");
    expect(res.status).toBe(503);
    const body = await res.json<{ error: string; message: string }>();
    expect(body.error).toBe("auth_not_configured");
    expect(body.message).toContain("AUTH_JWKS_URL");
  });

  it("answers 503 naming what is missing when a JWKS is set without issuer and audience, on health and IO", async () => {
    const half = authEnv({ AUTH_JWKS_URL: "https://idp.example.test/jwks.json", AUTH_ISSUER: ISSUER });
    for (const path of ["/health", `/io/${uniqueMesh()}/health`]) {
      const res = await call(half, path);
      expect(res.status, path).toBe(503);
      expect(await res.json()).toEqual({
        error: "auth_not_configured",
        message: "AUTH_JWKS_URL/AUTH_JWKS is set, but AUTH_ISSUER and AUTH_AUDIENCE are both required with it.",
      });
    }
  });

  it("refuses AUTH_ALGORITHMS listing none or an HS algorithm with 503", async () => {
    for (const algorithms of ["none", "RS256,HS256"]) {
      const res = await call(idpEnv({ AUTH_ALGORITHMS: algorithms }), "/health");
      expect(res.status, algorithms).toBe(503);
      expect((await res.json<{ message: string }>()).message).toContain("AUTH_ALGORITHMS may only list asymmetric algorithms");
    }
  });
});

describe("identity-provider tokens on the mesh routes", () => {
  it("opens the meshes the claim lists: exact ids and prefix* patterns, :readonly ones for reads only", async () => {
    const mesh = uniqueMesh();
    const token = await idToken({ meshes: [mesh, "team-x-*", `ro-${mesh}:readonly`] });
    expect((await health(idpEnv(), mesh, token)).status).toBe(200);
    expect((await health(idpEnv(), "team-x-42", token)).status).toBe(200);
    expect((await put(idpEnv(), mesh, token)).status).toBe(201);
    expect((await health(idpEnv(), `ro-${mesh}`, token)).status).toBe(200);
    const refused = await put(idpEnv(), `ro-${mesh}`, token);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ error: "forbidden", message: "This session is read-only." });
  });

  it("reads the claim named by AUTH_MESH_CLAIM", async () => {
    const mesh = uniqueMesh();
    const token = await idToken({ "https://app.example/meshes": [mesh] });
    expect((await health(idpEnv({ AUTH_MESH_CLAIM: "https://app.example/meshes" }), mesh, token)).status).toBe(200);
    expect((await health(idpEnv(), mesh, token)).status).toBe(403);
  });

  it("opens the meshes of the subject's grant rows, and nothing once the grant is gone", async () => {
    const sub = `user-${crypto.randomUUID()}`;
    const mesh = uniqueMesh();
    const token = await idToken({ sub });
    const denied = await health(idpEnv(), mesh, token);
    expect(denied.status).toBe(403);
    expect(await denied.json()).toEqual({
      error: "forbidden",
      message: "This identity token grants no access to this mesh (no mesh claim entry or grant covers it).",
    });
    await createGrant(env.DB, { subject: sub, meshPattern: mesh, access: "readonly" });
    expect((await health(idpEnv(), mesh, token)).status).toBe(200);
    expect((await put(idpEnv(), mesh, token)).status).toBe(403);
  });

  it("answers 401 naming the failed check without echoing the token", async () => {
    const mesh = uniqueMesh();
    const cases: [string, string][] = [
      [await idToken({ meshes: [mesh] }, { iss: "https://evil.example/" }), "The identity token's issuer (iss) is not AUTH_ISSUER."],
      [await idToken({ meshes: [mesh] }, { aud: "another-app" }), "The identity token's audience (aud) is not AUTH_AUDIENCE."],
      [await idToken({ meshes: [mesh] }, { exp: Math.floor(Date.now() / 1000) - 3600 }), "The identity token has expired (exp)."],
      [await idToken({ meshes: [mesh] }, { exp: null }), "The identity token has no expiry (exp is required)."],
    ];
    for (const [token, message] of cases) {
      const res = await health(idpEnv(), mesh, token);
      expect(res.status, message).toBe(401);
      const text = await res.text();
      expect(JSON.parse(text)).toEqual({ error: "unauthorized", message });
      expect(text).not.toContain(token.split(".")[1]);
    }
  });
});

describe("POST /sync/auth/session with an identity-provider token", () => {
  const exchange = (target: Env, token: string, body?: Record<string, unknown>) =>
    call(target, "/auth/session", {
      method: "POST",
      headers: { ...bearer(token), "CF-Connecting-IP": crypto.randomUUID(), "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  it("mints a session for the token's only mesh that never outlives the token", async () => {
    const mesh = uniqueMesh();
    const exp = Math.floor(Date.now() / 1000) + 120;
    const res = await exchange(idpEnv(), await idToken({ sub: "user-1", meshes: [`${mesh}:readonly`] }, { exp }));
    expect(res.status).toBe(201);
    const session = await res.json<{ token: string; expiresAt: string; mesh: string; scope: string }>();
    expect(session).toMatchObject({ mesh, scope: "readonly" });
    expect(Date.parse(session.expiresAt)).toBeLessThanOrEqual(exp * 1000);
    expect((await health(idpEnv(), mesh, session.token)).status).toBe(200);
    expect((await put(idpEnv(), mesh, session.token)).status).toBe(403);
  });

  it("refuses widening with 403 and a subject override or an ambiguous mesh with 400", async () => {
    const mesh = uniqueMesh();
    const token = await idToken({ meshes: [`${mesh}:readonly`, `${mesh}-b`] });
    const cases: [Record<string, unknown> | undefined, number, string][] = [
      [undefined, 400, "This identity token opens several mesh patterns: name one as mesh in the body."],
      [{ mesh, scope: "full" }, 403, "This identity token gives read-only access to that mesh."],
      [{ mesh: "*" }, 403, "This identity token grants no access to that mesh."],
      // What is left of the token (about 600 s) bounds the lifetime; the exact second depends on when this runs.
      [{ mesh, ttlSeconds: 3600 }, 403, "ttlSeconds may not exceed"],
      [{ mesh, subject: "someone-else" }, 400, "subject cannot be set: a session from an identity token keeps its sub."],
    ];
    for (const [body, status, message] of cases) {
      const res = await exchange(idpEnv(), token, body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect((await res.json<{ message: string }>()).message).toContain(message);
    }
    const none = await exchange(idpEnv(), await idToken({}));
    expect(none.status).toBe(403);
  });

  it("sends an HS256 token to the provider verifier when sessions are off, which refuses its algorithm", async () => {
    const mesh = uniqueMesh();
    const hs = await new SignJWT({ sub: "u", meshes: [mesh] })
      .setProtectedHeader({ alg: "HS256", kid: "k1" })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime("10m")
      .sign(new TextEncoder().encode("a-shared-secret-nobody-should-trust-0123"));
    const res = await health(idpEnv({ SESSION_SIGNING_KEY: undefined }), mesh, hs);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: "unauthorized", message: "The identity token's algorithm (alg) is not allowed (AUTH_ALGORITHMS)." });
  });
});

describe("an unreachable JWKS", () => {
  it("answers 503 unavailable, not 401 or 500, so the client retries", async () => {
    const mesh = uniqueMesh();
    const target = idpEnv({ AUTH_JWKS: undefined, AUTH_JWKS_URL: "http://127.0.0.1:9/.well-known/jwks.json" });
    const res = await health(target, mesh, await idToken({ meshes: [mesh] }));
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ error: "unavailable", message: "The identity provider's keys (JWKS) could not be fetched; retry." });
  });
});

describe("sessions exchanged from identity tokens and API key revocation", () => {
  it("are not revoked by revoking a key id that is no API key (their recorded key id)", async () => {
    const admin = "idp-test-admin-token-0123456789";
    const target = idpEnv({ ADMIN_TOKEN: admin });
    const mesh = uniqueMesh();
    const minted = await call(target, "/auth/session", {
      method: "POST",
      headers: { ...bearer(await idToken({ meshes: [mesh] })), "CF-Connecting-IP": crypto.randomUUID() },
    });
    expect(minted.status).toBe(201);
    const session = await minted.json<{ token: string }>();
    const revoke = await call(target, "/admin/keys/idp", { method: "DELETE", headers: bearer(admin) });
    expect(revoke.status).toBe(404);
    expect((await health(target, mesh, session.token)).status).toBe(200);
  });
});
