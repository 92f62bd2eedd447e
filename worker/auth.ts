// Who is calling, and what may they do. Modes, tried in this order against whichever are
// configured: 1) session JWT, 2) mesh bearer (hex SHA-256 of meshId + MESH_TOKEN_SECRET),
// 3) open (ALLOW_OPEN_ACCESS=1, local development only). README "Auth" documents the rules.
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

/** Validates the :mesh route parameter (pattern, then checksum policy) before anything else. */
export const withMesh: Handler = async (request, env) => {
  const meshId = validateMeshId(request.params.mesh);
  request.meshId = await checkMeshIdChecksum(meshId, {
    secret: env.MESH_ID_CHECKSUM_SECRET,
    required: readConfig(env).requireChecksummedMeshIds,
  });
};

/** Route guard: authenticates the caller for the request's mesh with the given access. */
export function requireAccess(access: Access): Handler {
  return async (request: MeshRequest, env: Env): Promise<void> => {
    request.principal = await authorizeMesh(request, env, request.meshId, access);
  };
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

/** Names of the auth modes this deployment has configured, for the landing document (never the secrets). */
export function configuredAuthModes(env: Env, config: Config): string[] {
  const modes: string[] = [];
  if (configuredSecret(env.SESSION_SIGNING_KEY) !== null) modes.push("session");
  if (configuredSecret(env.MESH_TOKEN_SECRET) !== null) modes.push("bearer");
  if (configuredSecret(env.ADMIN_TOKEN) !== null) modes.push("admin");
  if (config.allowOpenAccess) modes.push("open");
  return modes;
}

async function modesOf(env: Env, config: Config): Promise<Modes> {
  return {
    sessions: await sessionSigningKeys(env),
    bearerSecret: configuredSecret(env.MESH_TOKEN_SECRET),
    open: config.allowOpenAccess,
  };
}

export function authNotConfigured(): HttpError {
  return new HttpError(
    "auth_not_configured",
    "No auth is configured: set SESSION_SIGNING_KEY and/or MESH_TOKEN_SECRET with `wrangler secret put`, or ALLOW_OPEN_ACCESS=1 for local development only.",
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
  if (!(await isSessionLive(env.DB, claims.jti, config.revocationCacheMs))) {
    throw unauthorized("The session has been revoked.");
  }
  return claims;
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

/**
 * Authenticates the caller for `meshId` and checks `access`. Open mode (local development)
 * admits whatever would otherwise be a 401; a valid credential's limits (readonly, another
 * mesh) still apply. Under CONCEAL_DENIED every 401/403 becomes the same 404.
 */
export async function authorizeMesh(
  request: Request,
  env: Env,
  meshId: string,
  access: Access,
): Promise<Principal> {
  const config = readConfig(env);
  const modes = await modesOf(env, config);
  if (modes.sessions === null && modes.bearerSecret === null && !modes.open) throw authNotConfigured();
  const token = presentedToken(request, config, meshId);
  try {
    let principal: Principal;
    try {
      principal = await authenticate(token, modes, env, config, meshId);
    } catch (err) {
      if (modes.open && err instanceof HttpError && err.status === 401) {
        return { kind: "open", scope: "full", sessionId: null, subject: null, expiresAt: null };
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
