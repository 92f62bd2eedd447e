// Factories for the auth tests: env copies with other auth vars (real bindings), requests
// through the worker's default export, API keys, sessions and hand-crafted tokens.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { SignJWT } from "jose";
import worker from "../../worker/index";
import type { Env } from "../../worker/env";
import { createApiKey, type KeyAccess } from "../../worker/identity/api-keys";
import { signingKeysFrom } from "../../worker/lib/session-token";
import { base64UrlEncode } from "../../worker/lib/secrets";

export const SIGNING_KEY = "test-signing-key-0123456789abcdef-current";
export const OLD_SIGNING_KEY = "test-signing-key-0123456789abcdef-previous";
export const MESH_SECRET = "test-mesh-token-secret";
export const ADMIN_TOKEN = "test-admin-token-0123456789";

/** A copy of the test env with open access off and the given auth vars: real R2/D1/DO. */
export function authEnv(vars: Partial<Env> = {}): Env {
  return { ...env, ALLOW_OPEN_ACCESS: "0", SESSION_SIGNING_KEY: SIGNING_KEY, LOG_REQUESTS: "0", ...vars } as Env;
}

export async function call(target: Env, path: string, init: RequestInit = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`http://meshbox.test/sync${path}`, init), target, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

export const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

export const uniqueMesh = () => `mesh-${crypto.randomUUID()}`;
export const uniqueIp = () => `10.${(Math.random() * 255) | 0}.${(Math.random() * 255) | 0}.${(Math.random() * 255) | 0}-${crypto.randomUUID()}`;

export async function newKey(meshPattern: string, access: KeyAccess = "full") {
  return createApiKey(env.DB, { name: `test ${crypto.randomUUID()}`, meshPattern, access });
}

export interface MintedSession {
  token: string;
  tokenType: string;
  expiresAt: string;
  sessionId: string;
  mesh: string;
  scope: string;
}

/** Mints a session over HTTP from a fresh key; each call uses its own client IP. */
export async function mintSession(
  target: Env,
  apiKey: string,
  body?: Record<string, unknown>,
): Promise<MintedSession> {
  const res = await call(target, "/auth/session", {
    method: "POST",
    headers: { ...bearer(apiKey), "CF-Connecting-IP": uniqueIp(), "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status !== 201) throw new Error(`minting failed: ${res.status} ${await res.text()}`);
  return res.json<MintedSession>();
}

export async function sessionFor(target: Env, meshPattern: string, access: KeyAccess = "full", body?: Record<string, unknown>) {
  const key = await newKey(meshPattern, access);
  return { key, session: await mintSession(target, key.key, body) };
}

export interface CraftedClaims {
  iss?: string;
  aud?: string;
  sub?: string;
  mesh?: unknown;
  scope?: unknown;
  jti?: string;
  iat?: number;
  exp?: number;
  nbf?: number;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** A token signed like the server's (HS256, kid of the key) with claims the test chooses. */
export async function craftToken(
  claims: CraftedClaims,
  options: { secret?: string; kid?: string | null } = {},
): Promise<string> {
  const secret = options.secret ?? SIGNING_KEY;
  const keys = await signingKeysFrom(secret, undefined);
  const iat = claims.iat ?? nowSeconds();
  const payload: Record<string, unknown> = {
    iss: claims.iss ?? "local",
    aud: claims.aud ?? "meshbox",
    sub: claims.sub ?? "device-1",
    mesh: claims.mesh ?? "*",
    scope: claims.scope ?? "full",
    jti: claims.jti ?? crypto.randomUUID(),
    iat,
    exp: claims.exp ?? iat + 600,
  };
  if (claims.nbf !== undefined) payload.nbf = claims.nbf;
  const kid = options.kid === undefined ? keys!.current.kid : options.kid;
  return new SignJWT(payload)
    .setProtectedHeader(kid === null ? { alg: "HS256", typ: "JWT" } : { alg: "HS256", typ: "JWT", kid })
    .sign(new TextEncoder().encode(secret));
}

/** An unsigned `alg: none` token with otherwise plausible claims. */
export function unsignedToken(claims: Record<string, unknown>): string {
  const enc = (value: unknown) => base64UrlEncode(new TextEncoder().encode(JSON.stringify(value)));
  return `${enc({ alg: "none", typ: "JWT" })}.${enc(claims)}.`;
}

export function decodePayload(token: string): Record<string, unknown> {
  const part = token.split(".")[1] ?? "";
  const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4))) as Record<string, unknown>;
}

export const expectUnauthorized = async (res: Response) => {
  const body = await res.json<{ error: string }>();
  return { status: res.status, error: body.error, challenge: res.headers.get("WWW-Authenticate") };
};
