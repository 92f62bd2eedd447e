// Session routes: exchange an API key for a short-lived session JWT (POST), and revoke your own
// session (DELETE). Both are rate-limited per client IP; minting also per key.
import type { Handler, MeshRequest } from "../request-context";
import type { Env } from "../env";
import { HttpError, badRequest } from "../lib/errors";
import { readConfig, type Config } from "../lib/config";
import { readJsonObject } from "../lib/body";
import { isValidMeshPattern, meshPatternWithin } from "../lib/mesh-id";
import { signSessionToken, type Scope, type SigningKeys } from "../lib/session-token";
import { bearerToken, identityTokenClaims, sessionSigningKeys, unauthorized, verifySession } from "../auth";
import { createIdpSession, sessionCreated } from "./idp-session";
import { findLiveApiKey, touchApiKeyStatement, type ApiKeyRecord } from "../identity/api-keys";
import { insertSessionStatement, revokeSession } from "../identity/sessions";
import { enforceRateLimit } from "../identity/rate-limit";
import { RATE_WINDOW_MS, enforceIpLimit } from "../identity/abuse-limits";
import { orUnavailable } from "../lib/unavailable";

const MAX_SUBJECT_LENGTH = 200;

/** Per client IP (AUTH_RATE_LIMIT_PER_IP); a request without CF-Connecting-IP: see clientIp. */
async function limitByIp(request: Request, env: Env, config: Config): Promise<void> {
  await enforceIpLimit(env.DB, "auth-ip", request, config.authRateLimitPerIp);
}

async function requireSessionKeys(env: Env): Promise<SigningKeys> {
  const keys = await sessionSigningKeys(env);
  if (keys === null) {
    throw new HttpError(
      "auth_not_configured",
      "Sessions are not configured: set SESSION_SIGNING_KEY with `wrangler secret put SESSION_SIGNING_KEY`.",
    );
  }
  return keys;
}

/** The optional JSON body: absent or empty means "everything the key allows". */
function readOptionalBody(request: Request, config: Config): Promise<Record<string, unknown>> {
  return readJsonObject(request, config.limits.jsonBody, { allowEmpty: true });
}

interface Grant {
  mesh: string;
  scope: Scope;
  subject: string;
  ttlSeconds: number;
}

/** What the session may do: the key's grant, narrowed by the body, never widened (403). */
function narrowGrant(key: ApiKeyRecord, body: Record<string, unknown>, config: Config): Grant {
  const maxTtl = Math.max(1, Math.floor(config.sessionTtlSeconds));
  const grant: Grant = { mesh: key.meshPattern, scope: key.access, subject: `key:${key.id}`, ttlSeconds: maxTtl };
  if (body.mesh !== undefined) {
    if (!isValidMeshPattern(body.mesh)) throw badRequest('mesh must be a mesh id, "*", or a prefix ending in "*".');
    if (!meshPatternWithin(body.mesh, key.meshPattern)) {
      throw new HttpError("forbidden", "This API key may not mint sessions for that mesh.");
    }
    grant.mesh = body.mesh;
  }
  if (body.scope !== undefined) {
    if (body.scope !== "full" && body.scope !== "readonly") throw badRequest('scope must be "full" or "readonly".');
    if (body.scope === "full" && key.access !== "full") {
      throw new HttpError("forbidden", "This API key is read-only; it cannot mint full sessions.");
    }
    grant.scope = body.scope;
  }
  if (body.subject !== undefined) {
    if (typeof body.subject !== "string" || body.subject.trim() === "" || body.subject.length > MAX_SUBJECT_LENGTH) {
      throw badRequest(`subject must be a non-empty string of at most ${MAX_SUBJECT_LENGTH} characters.`);
    }
    grant.subject = body.subject;
  }
  if (body.ttlSeconds !== undefined) {
    if (typeof body.ttlSeconds !== "number" || !Number.isInteger(body.ttlSeconds) || body.ttlSeconds < 1) {
      throw badRequest("ttlSeconds must be a positive whole number of seconds.");
    }
    if (body.ttlSeconds > maxTtl) {
      throw new HttpError("forbidden", `ttlSeconds may not exceed this deployment's session lifetime of ${maxTtl} s.`);
    }
    grant.ttlSeconds = body.ttlSeconds;
  }
  return grant;
}

/**
 * POST /auth/session: `Authorization: Bearer <API key>`, optional `{ mesh, scope, subject, ttlSeconds }`;
 * or `Authorization: Bearer <identity-provider token>`, optional `{ mesh, scope, ttlSeconds }`.
 */
export const createSession: Handler = async (request: MeshRequest, env: Env) => {
  const config = readConfig(env);
  const keys = await requireSessionKeys(env);
  await limitByIp(request, env, config);
  const presented = bearerToken(request);
  if (presented === null) throw unauthorized("Minting a session needs Authorization: Bearer <API key>.");
  const identity = await identityTokenClaims(presented, env);
  if (identity !== null) return createIdpSession(env, keys, config, identity, await readOptionalBody(request, config));
  const key = await findLiveApiKey(env.DB, presented);
  if (key === null) throw unauthorized("The API key is invalid or revoked.");
  await enforceRateLimit(env.DB, `auth-key:${key.id}`, config.authRateLimitPerKey, RATE_WINDOW_MS);
  const grant = narrowGrant(key, await readOptionalBody(request, config), config);

  const now = Date.now();
  const iat = Math.floor(now / 1000);
  const exp = iat + grant.ttlSeconds;
  const jti = crypto.randomUUID();
  const token = await signSessionToken(keys, config.tenant, {
    sub: grant.subject,
    mesh: grant.mesh,
    scope: grant.scope,
    jti,
    iat,
    exp,
  });
  const [insert] = await orUnavailable("Session storage", () =>
    env.DB.batch([
      insertSessionStatement(env.DB, {
        jti,
        keyId: key.id,
        subject: grant.subject,
        meshPattern: grant.mesh,
        scope: grant.scope,
        issuedAt: iat * 1000,
        expiresAt: exp * 1000,
      }),
      touchApiKeyStatement(env.DB, key.id, now),
    ]),
  );
  const inserted = insert?.meta.changes ?? 0;
  // The key was revoked between the lookup and the insert.
  if (inserted === 0) throw unauthorized("The API key is invalid or revoked.");

  return sessionCreated(token, jti, exp, grant);
};

/** DELETE /auth/session: revokes the presented session and closes its sockets. */
export const deleteSession: Handler = async (request: MeshRequest, env: Env) => {
  const config = readConfig(env);
  const keys = await requireSessionKeys(env);
  await limitByIp(request, env, config);
  const presented = bearerToken(request);
  if (presented === null) throw unauthorized("Revoking a session needs Authorization: Bearer <session token>.");
  const claims = await verifySession(presented, keys, env, config);
  await revokeSession(env, claims.jti);
  return new Response(null, { status: 204 });
};
