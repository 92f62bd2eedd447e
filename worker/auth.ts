// Who is calling, and what may they do. Modes, tried against whichever are configured:
// 1) session JWT (HS256, ours), 2) identity-provider JWT (asymmetric, verified against the
// provider's JWKS), 3) mesh bearer (hex SHA-256 of meshId + MESH_TOKEN_SECRET), 4) open
// (ALLOW_OPEN_ACCESS=1, local development only). README "Auth" documents the rules.
import { decodeProtectedHeader } from "jose";
import type { Env } from "./env";
import type { Access, Handler, MeshRequest, Principal } from "./request-context";
import { HttpError } from "./lib/errors";
import { readConfig, type Config } from "./lib/config";
import { checkMeshIdChecksum, meshPatternCovers, validateMeshId } from "./lib/mesh-id";
import { constantTimeEqual, sha256Hex } from "./lib/secrets";
import {
  MIN_SIGNING_KEY_LENGTH,
  looksLikeJwt,
  signingKeysFrom,
  verifySessionToken,
  type SessionClaims,
  type SigningKeys,
} from "./lib/session-token";
import { isSessionLive } from "./identity/sessions";
import { hooksOf, type AuthorizeHook, type Grant } from "./hooks";
import { idpScopeFor, idpVerifierOf, verifyIdpToken, type IdpClaims, type IdpVerifier } from "./identity/idp-tokens";
import { countCredentialFailure } from "./identity/abuse-limits";

/** Validates the :mesh route parameter (pattern, then checksum policy) before anything else. */
export const withMesh: Handler = async (request, env) => {
  const meshId = validateMeshId(request.params.mesh);
  request.meshId = await checkMeshIdChecksum(meshId, {
    secret: env.MESH_ID_CHECKSUM_SECRET,
    required: readConfig(env).requireChecksummedMeshIds,
  });
};

/**
 * Route guard: authenticates the caller for the request's mesh with the given access, through the
 * app's authorize hook when the meshbox instance has one (worker/hooks.ts), else the built-in modes.
 */
export function requireAccess(access: Access): Handler {
  return async (request: MeshRequest, env: Env): Promise<void> => {
    const hook = hooksOf(env).authorize;
    request.principal = hook
      ? await authorizeByHook(hook, request, env, request.meshId, access)
      : await authorizeMesh(request, env, request.meshId, access);
  };
}

function grantOf(principal: Principal): Grant {
  return { access: principal.scope, subject: principal.subject, expiresAt: principal.expiresAt };
}

async function authorizeByHook(
  hook: AuthorizeHook,
  request: Request,
  env: Env,
  meshId: string,
  access: Access,
): Promise<Principal> {
  const config = readConfig(env);
  try {
    const grant = await hook(request, meshId, {
      env,
      access,
      builtIn: async () => grantOf(await authorizeMesh(request, env, meshId, access)),
    });
    if (grant === null) throw unauthorized("This mesh needs a credential the app accepts.");
    if (grant.access !== "full" && grant.access !== "readonly") {
      throw new Error(`meshbox authorize hook: access must be "full" or "readonly", not ${JSON.stringify(grant.access)}`);
    }
    if (access === "write" && grant.access !== "full") throw forbidden("This grant is read-only.");
    return {
      kind: "app",
      scope: grant.access,
      sessionId: null,
      subject: grant.subject ?? null,
      expiresAt: grant.expiresAt ?? null,
    };
  } catch (err) {
    if (config.concealDenied && err instanceof HttpError && (err.status === 401 || err.status === 403)) {
      throw concealedDenial();
    }
    throw err;
  }
}

const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;
const MESH_BEARER = /^[0-9a-f]{64}$/;

/** The bearer token from the Authorization header, or null. */
export function bearerToken(request: Request): string | null {
  const header = request.headers.get("Authorization");
  if (header === null) return null;
  return BEARER.exec(header)?.[1] ?? null;
}

/**
 * The header token, or for the notify WebSocket route only, the `access_token` query parameter
 * (browsers cannot set headers on a WebSocket). The query is never logged (pipeline.ts logs the
 * route pattern, not the URL).
 */
function presentedToken(request: Request, config: Config, meshId: string): string | null {
  const fromHeader = bearerToken(request);
  if (fromHeader !== null) return fromHeader;
  // Only the notify route takes a query token, and its path is verbatim in the URL: no other
  // request needs the URL parsed again.
  if (!request.url.includes("/notify/")) return null;
  const url = new URL(request.url);
  if (url.pathname !== `${config.mountPrefix}/notify/${meshId}`) return null;
  const fromQuery = url.searchParams.get("access_token");
  return fromQuery !== null && fromQuery !== "" ? fromQuery : null;
}

/** The mesh bearer token for a mesh: lowercase hex SHA-256(meshId + MESH_TOKEN_SECRET). */
export function meshBearerToken(meshId: string, secret: string): Promise<string> {
  return sha256Hex(meshId + secret);
}

interface Modes {
  sessions: SigningKeys | null;
  idp: IdpVerifier | null;
  bearerSecret: string | null;
  open: boolean;
}

const configuredSecret = (value: string | undefined): string | null =>
  value !== undefined && value !== "" ? value : null;

/**
 * The session signing keys, or null when sessions are not configured. A key too short for
 * HS256 is a deployment mistake, refused loudly rather than silently weakening every token.
 */
export async function sessionSigningKeys(env: Env): Promise<SigningKeys | null> {
  const signing = configuredSecret(env.SESSION_SIGNING_KEY);
  if (signing !== null && signing.length < MIN_SIGNING_KEY_LENGTH) {
    throw new HttpError(
      "auth_not_configured",
      `SESSION_SIGNING_KEY must be at least ${MIN_SIGNING_KEY_LENGTH} characters; set a longer one with \`wrangler secret put SESSION_SIGNING_KEY\`.`,
    );
  }
  return signingKeysFrom(env.SESSION_SIGNING_KEY, env.SESSION_SIGNING_KEY_PREVIOUS);
}

/** Every configured mode; a half-configured one throws 503 auth_not_configured saying what is missing. */
async function modesOf(env: Env, config: Config): Promise<Modes> {
  return {
    sessions: await sessionSigningKeys(env),
    idp: idpVerifierOf(config.idp),
    bearerSecret: configuredSecret(env.MESH_TOKEN_SECRET),
    open: config.allowOpenAccess,
  };
}

export type AuthModeName = "session" | "idp" | "bearer" | "open" | "app";

/**
 * The names of the configured auth modes (never a secret), for /sync/health. Throws 503
 * auth_not_configured when none is, or when one is half-configured.
 */
export async function configuredAuthModes(env: Env): Promise<AuthModeName[]> {
  const modes = await modesOf(env, readConfig(env));
  const names: AuthModeName[] = [];
  if (modes.sessions !== null) names.push("session");
  if (modes.idp !== null) names.push("idp");
  if (modes.bearerSecret !== null) names.push("bearer");
  if (modes.open) names.push("open");
  // An app's authorize hook (createMeshbox) admits callers on its own: such an app serves without
  // any built-in mode, and its smoke test must pass.
  if (hooksOf(env).authorize !== null) names.push("app");
  if (names.length === 0) throw authNotConfigured();
  return names;
}

export function authNotConfigured(): HttpError {
  return new HttpError(
    "auth_not_configured",
    "No auth is configured: set SESSION_SIGNING_KEY and/or MESH_TOKEN_SECRET with `wrangler secret put`, or AUTH_JWKS_URL with AUTH_ISSUER and AUTH_AUDIENCE, or ALLOW_OPEN_ACCESS=1 for local development only.",
  );
}

export function unauthorized(message: string): HttpError {
  return new HttpError("unauthorized", message, { headers: { "WWW-Authenticate": "Bearer" } });
}

function forbidden(message: string): HttpError {
  return new HttpError("forbidden", message);
}

/**
 * What every denied request for a mesh answers under CONCEAL_DENIED=1. Auth never looks at
 * storage, so this answer is the same whether the mesh holds data or not: without a valid
 * credential every mesh looks like an unknown one, and ids cannot be enumerated.
 */
export function concealedDenial(): HttpError {
  return new HttpError("not_found", "Not found.");
}

/** The claims of a valid, live session token, or an HttpError saying why not. */
export async function verifySession(
  token: string,
  keys: SigningKeys,
  env: Env,
  config: Config,
): Promise<SessionClaims> {
  const claims = await verifySessionToken(token, keys, {
    issuer: config.tenant,
    clockToleranceSeconds: config.clockToleranceSeconds,
  });
  if (claims === null) throw unauthorized("The session token is invalid or expired.");
  if (!(await isSessionLive(env.DB, claims, config.revocationCacheMs))) {
    throw unauthorized("The session has been revoked.");
  }
  return claims;
}

/**
 * Session tokens are HS256 and provider tokens asymmetric: the header's alg decides which
 * verifier sees a JWT when both are configured. Either verifier still enforces its own
 * algorithm allowlist, so a forged header gains nothing.
 */
function isSymmetricJwt(token: string): boolean {
  try {
    const alg = decodeProtectedHeader(token).alg;
    return typeof alg === "string" && alg.toUpperCase().startsWith("HS");
  } catch {
    return false;
  }
}

/**
 * For the session exchange: the claims of an identity-provider token when that mode is
 * configured and the presented credential is an asymmetric JWT; null when it is not one (an API
 * key, or no provider configured). An invalid provider token throws the 401 naming the check.
 */
export async function identityTokenClaims(token: string, env: Env): Promise<IdpClaims | null> {
  const config = readConfig(env);
  const verifier = idpVerifierOf(config.idp);
  if (verifier === null || !looksLikeJwt(token) || isSymmetricJwt(token)) return null;
  return verifyIdpToken(token, verifier, config.clockToleranceSeconds);
}

async function authenticate(
  token: string | null,
  modes: Modes,
  env: Env,
  config: Config,
  meshId: string,
): Promise<Principal> {
  // The bearer hash is computed whenever bearer mode is configured, token or not, so a denial
  // costs the same work whatever was presented (CONCEAL_DENIED relies on comparable timing).
  const expectedBearer = modes.bearerSecret !== null ? await meshBearerToken(meshId, modes.bearerSecret) : null;
  if (token === null) throw unauthorized("This mesh needs a bearer token (Authorization: Bearer <token>).");

  if (looksLikeJwt(token) && modes.idp !== null && !(modes.sessions !== null && isSymmetricJwt(token))) {
    const claims = await verifyIdpToken(token, modes.idp, config.clockToleranceSeconds);
    const scope = await idpScopeFor(env.DB, claims, meshId, config.revocationCacheMs);
    if (scope === null) throw forbidden("This identity token grants no access to this mesh (no mesh claim entry or grant covers it).");
    return { kind: "idp", scope, sessionId: null, subject: claims.sub, expiresAt: claims.exp * 1000 };
  }
  if (modes.sessions !== null && looksLikeJwt(token)) {
    const claims = await verifySession(token, modes.sessions, env, config);
    if (!meshPatternCovers(claims.mesh, meshId)) throw forbidden("This session is not valid for this mesh.");
    return {
      kind: "session",
      scope: claims.scope,
      sessionId: claims.jti,
      subject: claims.sub,
      expiresAt: claims.exp * 1000,
    };
  }
  if (expectedBearer !== null && MESH_BEARER.test(token)) {
    if (!constantTimeEqual(token, expectedBearer)) throw unauthorized("The bearer token is not valid for this mesh.");
    return { kind: "bearer", scope: "full", sessionId: null, subject: null, expiresAt: null };
  }
  throw unauthorized("The bearer token is not valid here.");
}

/** What an open request without a credential is. */
const OPEN_PRINCIPAL: Principal = Object.freeze({ kind: "open", scope: "full", sessionId: null, subject: null, expiresAt: null });

/**
 * Authenticates the caller for `meshId` and checks `access`. Open mode (local development)
 * admits a request that presents no credential; a presented one must be valid (401 otherwise,
 * so auth mistakes show on the developer's machine) and its limits (readonly, another mesh)
 * apply. Under CONCEAL_DENIED every 401/403 becomes the same 404.
 */
export async function authorizeMesh(
  request: Request,
  env: Env,
  meshId: string,
  access: Access,
): Promise<Principal> {
  const config = readConfig(env);
  const modes = await modesOf(env, config);
  if (modes.sessions === null && modes.idp === null && modes.bearerSecret === null && !modes.open) throw authNotConfigured();
  const token = presentedToken(request, config, meshId);
  // Open access with no credential is the open principal whatever else is configured; answering
  // here spares every open request authenticate's thrown (and stack-captured) 401.
  if (modes.open && token === null) return OPEN_PRINCIPAL;
  try {
    let principal: Principal;
    try {
      principal = await authenticate(token, modes, env, config, meshId);
    } catch (err) {
      // Only a presented credential that failed counts (a missing one is no guess), and only
      // here, off the success path: good traffic pays no extra D1 write.
      if (token !== null && err instanceof HttpError && err.status === 401) {
        await countCredentialFailure(env.DB, request, config.authFailureLimitPerMinute);
      }
      throw err;
    }
    if (access === "write" && principal.scope !== "full") throw forbidden("This session is read-only.");
    return principal;
  } catch (err) {
    if (config.concealDenied && err instanceof HttpError && (err.status === 401 || err.status === 403)) {
      throw concealedDenial();
    }
    throw err;
  }
}

/** Admin API guard: `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time. */
export const requireAdmin: Handler = (request, env) => {
  const adminToken = configuredSecret(env.ADMIN_TOKEN);
  if (adminToken === null) {
    throw new HttpError(
      "auth_not_configured",
      "The admin API is disabled: set ADMIN_TOKEN with `wrangler secret put ADMIN_TOKEN`.",
    );
  }
  const token = bearerToken(request);
  if (token === null || !constantTimeEqual(token, adminToken)) {
    throw unauthorized("The admin API needs Authorization: Bearer <ADMIN_TOKEN>.");
  }
};
