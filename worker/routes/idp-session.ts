// POST /auth/session with an identity-provider token: exchanges it for a meshbox session that
// is narrower (one mesh pattern, maybe readonly, at most SESSION_TTL_SECONDS and never past the
// provider token's exp) and revocable (a D1 record like every session).
import type { Env } from "../env";
import { HttpError, badRequest } from "../lib/errors";
import type { Config } from "../lib/config";
import { isValidMeshPattern, meshPatternWithin } from "../lib/mesh-id";
import { signSessionToken, type Scope, type SigningKeys } from "../lib/session-token";
import { idpEntitlements, type IdpClaims, type MeshEntitlement } from "../identity/idp-tokens";
import { insertIdpSessionStatement } from "../identity/sessions";
import { enforceRateLimit } from "../identity/rate-limit";
import { orUnavailable } from "../lib/unavailable";

const RATE_WINDOW_MS = 60_000;

interface IdpGrant {
  mesh: string;
  scope: Scope;
  ttlSeconds: number;
}

function forbidden(message: string): HttpError {
  return new HttpError("forbidden", message);
}

/** The session the body asks for, within what the token opens (403 for anything wider). */
function narrow(entitlements: MeshEntitlement[], claims: IdpClaims, body: Record<string, unknown>, config: Config, nowMs: number): IdpGrant {
  if (entitlements.length === 0) throw forbidden("This identity token grants no mesh (no mesh claim entry or grant).");
  let mesh: string;
  if (body.mesh !== undefined) {
    if (!isValidMeshPattern(body.mesh)) throw badRequest('mesh must be a mesh id, "*", or a prefix ending in "*".');
    mesh = body.mesh;
  } else {
    const distinct = new Set(entitlements.map((e) => e.meshPattern));
    if (distinct.size !== 1) throw badRequest("This identity token opens several mesh patterns: name one as mesh in the body.");
    mesh = [...distinct][0] as string;
  }
  const covering = entitlements.filter((e) => meshPatternWithin(mesh, e.meshPattern));
  if (covering.length === 0) throw forbidden("This identity token grants no access to that mesh.");
  const maxScope: Scope = covering.some((e) => e.access === "full") ? "full" : "readonly";
  let scope = maxScope;
  if (body.scope !== undefined) {
    if (body.scope !== "full" && body.scope !== "readonly") throw badRequest('scope must be "full" or "readonly".');
    if (body.scope === "full" && maxScope !== "full") throw forbidden("This identity token gives read-only access to that mesh.");
    scope = body.scope;
  }
  // Never outlive the provider's token: its exp is when the provider stops vouching for the user.
  const maxTtl = Math.max(1, Math.min(Math.floor(config.sessionTtlSeconds), claims.exp - Math.floor(nowMs / 1000)));
  let ttlSeconds = maxTtl;
  if (body.ttlSeconds !== undefined) {
    if (typeof body.ttlSeconds !== "number" || !Number.isInteger(body.ttlSeconds) || body.ttlSeconds < 1) {
      throw badRequest("ttlSeconds must be a positive whole number of seconds.");
    }
    if (body.ttlSeconds > maxTtl) {
      throw forbidden(`ttlSeconds may not exceed ${maxTtl} s (the session lifetime, or what is left of the identity token).`);
    }
    ttlSeconds = body.ttlSeconds;
  }
  return { mesh, scope, ttlSeconds };
}

export async function createIdpSession(
  env: Env,
  keys: SigningKeys,
  config: Config,
  claims: IdpClaims,
  body: Record<string, unknown>,
): Promise<Response> {
  if (body.subject !== undefined) throw badRequest("subject cannot be set: a session from an identity token keeps its sub.");
  await enforceRateLimit(env.DB, `auth-sub:${claims.sub}`, config.authRateLimitPerMinute, RATE_WINDOW_MS);
  const now = Date.now();
  const grant = narrow(await idpEntitlements(env.DB, claims, config.revocationCacheMs), claims, body, config, now);
  const iat = Math.floor(now / 1000);
  const exp = iat + grant.ttlSeconds;
  const jti = crypto.randomUUID();
  const token = await signSessionToken(keys, config.tenant, { sub: claims.sub, mesh: grant.mesh, scope: grant.scope, jti, iat, exp });
  await orUnavailable("Session storage", () =>
    insertIdpSessionStatement(env.DB, {
      jti,
      subject: claims.sub,
      meshPattern: grant.mesh,
      scope: grant.scope,
      issuedAt: iat * 1000,
      expiresAt: exp * 1000,
    }).run(),
  );
  return sessionCreated(token, jti, exp, grant);
}

/** The 201 answer of POST /auth/session, whichever credential minted the session. */
export function sessionCreated(token: string, jti: string, exp: number, grant: { mesh: string; scope: Scope }): Response {
  return new Response(
    JSON.stringify({
      token,
      tokenType: "Bearer",
      expiresAt: new Date(exp * 1000).toISOString(),
      sessionId: jti,
      mesh: grant.mesh,
      scope: grant.scope,
    }),
    { status: 201, headers: { "Content-Type": "application/json", "Cache-Control": "no-store" } },
  );
}
