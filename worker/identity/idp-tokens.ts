// Identity-provider tokens: JWTs an app's sign-in provider (Auth0, Clerk, Supabase, Cognito, …)
// issues, verified against its JWKS with jose (remote set with jose's own cache and cooldown, or
// an inline set), then mapped to meshes by a claim and/or the D1 `grants` table.
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors as joseErrors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from "jose";
import type { IdpConfig } from "../lib/config";
import { HttpError } from "../lib/errors";
import { isValidMeshPattern, meshPatternCovers } from "../lib/mesh-id";
import { grantsOfSubject } from "./grants";

export type IdpScope = "full" | "readonly";

/** One mesh pattern a token opens, from its claim or a grant row. */
export interface MeshEntitlement {
  meshPattern: string;
  access: IdpScope;
}

export interface IdpClaims {
  sub: string;
  /** Epoch seconds; always present (tokens without exp are refused). */
  exp: number;
  /** What the mesh claim lists (grant rows are read separately, only when needed). */
  claimed: MeshEntitlement[];
}

/** A usable verifier: a key getter and the checks every token must pass. */
export interface IdpVerifier {
  keys: JWTVerifyGetKey;
  issuer: string;
  audience: string;
  algorithms: string[];
  meshClaim: string;
}

/** Asymmetric algorithms jose verifies in Workers; `none` and HS* (shared secrets) never. */
const ALLOWED_ALGORITHMS = new Set(["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"]);

function misconfigured(message: string): HttpError {
  return new HttpError("auth_not_configured", message);
}

// Per isolate: one key getter per JWKS source, so jose's fetch cache and cooldown outlive the
// request. Bounded: a handful of sources at most exist per deployment; the map only grows if the
// configuration changes under a live isolate.
const getters = new Map<string, JWTVerifyGetKey>();
const MAX_GETTERS = 8;

function cachedGetter(cacheKey: string, make: () => JWTVerifyGetKey): JWTVerifyGetKey {
  let getter = getters.get(cacheKey);
  if (getter === undefined) {
    getter = make();
    if (getters.size >= MAX_GETTERS) getters.clear();
    getters.set(cacheKey, getter);
  }
  return getter;
}

function keysOf(config: IdpConfig): JWTVerifyGetKey {
  if (config.jwksUrl !== null) {
    let url: URL;
    try {
      url = new URL(config.jwksUrl);
    } catch {
      throw misconfigured("AUTH_JWKS_URL is not a URL.");
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") throw misconfigured("AUTH_JWKS_URL must be an https:// (or, locally, http://) URL.");
    const { jwksCooldownMs, jwksCacheMaxAgeMs } = config;
    return cachedGetter(`url ${url.href} ${jwksCooldownMs} ${jwksCacheMaxAgeMs}`, () =>
      createRemoteJWKSet(url, { cooldownDuration: jwksCooldownMs, cacheMaxAge: jwksCacheMaxAgeMs }),
    );
  }
  const inline = config.jwksInline as string;
  return cachedGetter(`inline ${inline}`, () => {
    let set: unknown;
    try {
      set = JSON.parse(inline);
    } catch {
      throw misconfigured("AUTH_JWKS is not valid JSON; it must be a JWKS ({\"keys\": [...]}).");
    }
    if (typeof set !== "object" || set === null || !Array.isArray((set as { keys?: unknown }).keys)) {
      throw misconfigured("AUTH_JWKS must be a JWKS ({\"keys\": [...]}).");
    }
    return createLocalJWKSet(set as JSONWebKeySet);
  });
}

/**
 * The verifier, null when identity-provider tokens are not configured, or an HttpError (503)
 * naming what is missing when they are half-configured: a JWKS without issuer and audience
 * would accept any token the provider ever signed for any app.
 */
export function idpVerifierOf(config: IdpConfig): IdpVerifier | null {
  if (config.jwksUrl === null && config.jwksInline === null) return null;
  if (config.issuer === null || config.audience === null) {
    throw misconfigured("AUTH_JWKS_URL/AUTH_JWKS is set, but AUTH_ISSUER and AUTH_AUDIENCE are both required with it.");
  }
  const refused = config.algorithms.filter((alg) => !ALLOWED_ALGORITHMS.has(alg));
  if (refused.length > 0 || config.algorithms.length === 0) {
    throw misconfigured(
      `AUTH_ALGORITHMS may only list asymmetric algorithms (${[...ALLOWED_ALGORITHMS].join(", ")}); refused: ${refused.join(", ") || "(empty)"}.`,
    );
  }
  return {
    keys: keysOf(config),
    issuer: config.issuer,
    audience: config.audience,
    algorithms: config.algorithms,
    meshClaim: config.meshClaim,
  };
}

function unauthorized(message: string): HttpError {
  return new HttpError("unauthorized", message, { headers: { "WWW-Authenticate": 'Bearer error="invalid_token"' } });
}

/** Names the failed check; never the token or a claim's value. */
function explain(err: unknown): HttpError {
  if (err instanceof joseErrors.JWTExpired) return unauthorized("The identity token has expired (exp).");
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === "iss") return unauthorized("The identity token's issuer (iss) is not AUTH_ISSUER.");
    if (err.claim === "aud") return unauthorized("The identity token's audience (aud) is not AUTH_AUDIENCE.");
    if (err.claim === "exp") return unauthorized("The identity token has no expiry (exp is required).");
    if (err.claim === "nbf") return unauthorized("The identity token is not valid yet (nbf).");
    if (err.claim === "iat") return unauthorized("The identity token's issued-at time (iat) is invalid.");
    if (err.claim === "sub") return unauthorized("The identity token has no subject (sub).");
    return unauthorized(`The identity token's ${err.claim} claim is invalid.`);
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return unauthorized("The identity token's algorithm (alg) is not allowed (AUTH_ALGORITHMS).");
  if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) {
    return unauthorized("The identity token is signed with an unknown key (kid not in the provider's JWKS).");
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return unauthorized("The identity token's signature is invalid.");
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid || err instanceof joseErrors.JOSENotSupported) {
    return unauthorized("The identity token is malformed.");
  }
  // Anything else is the key set itself (a timeout, a refused connection, a non-200 answer or a
  // set that is not a JWKS): the server's trouble, not the caller's, so 503 and a log line.
  console.error(JSON.stringify({ level: "error", msg: "JWKS unavailable", error: String(err) }));
  return new HttpError("unavailable", "The identity provider's keys (JWKS) could not be fetched; retry.");
}

/** Entries of the mesh claim: `mesh-id`, `prefix*` or `*`, each optionally `:readonly`. Others are ignored. */
export function parseMeshClaim(value: unknown): MeshEntitlement[] {
  const entries = typeof value === "string" ? value.split(/[\s,]+/) : Array.isArray(value) ? value : [];
  const out: MeshEntitlement[] = [];
  for (const entry of entries) {
    if (typeof entry !== "string") continue;
    const readonly = entry.endsWith(":readonly");
    const meshPattern = readonly ? entry.slice(0, -":readonly".length) : entry;
    if (isValidMeshPattern(meshPattern)) out.push({ meshPattern, access: readonly ? "readonly" : "full" });
  }
  return out;
}

export async function verifyIdpToken(token: string, verifier: IdpVerifier, clockToleranceSeconds: number): Promise<IdpClaims> {
  let payload: Record<string, unknown>;
  try {
    const verified = await jwtVerify(token, verifier.keys, {
      algorithms: verifier.algorithms,
      issuer: verifier.issuer,
      audience: verifier.audience,
      clockTolerance: clockToleranceSeconds,
      requiredClaims: ["exp", "sub"],
    });
    payload = verified.payload as Record<string, unknown>;
  } catch (err) {
    throw explain(err);
  }
  const { sub, exp } = payload;
  if (typeof sub !== "string" || sub === "") throw unauthorized("The identity token has no subject (sub).");
  if (typeof exp !== "number") throw unauthorized("The identity token has no expiry (exp is required).");
  return { sub, exp, claimed: parseMeshClaim(payload[verifier.meshClaim]) };
}

const better = (a: IdpScope | null, b: IdpScope): IdpScope => (a === "full" || b === "full" ? "full" : "readonly");

function scopeFrom(entitlements: readonly MeshEntitlement[], meshId: string, start: IdpScope | null): IdpScope | null {
  let scope = start;
  for (const e of entitlements) if (meshPatternCovers(e.meshPattern, meshId)) scope = better(scope, e.access);
  return scope;
}

/**
 * What the token may do on this mesh: the best of its claim entries and its subject's grant
 * rows, or null (403). Grant rows are read only when the claim does not already give full access.
 */
export async function idpScopeFor(
  db: D1Database,
  claims: IdpClaims,
  meshId: string,
  cacheMs: number,
): Promise<IdpScope | null> {
  const fromClaim = scopeFrom(claims.claimed, meshId, null);
  if (fromClaim === "full") return fromClaim;
  return scopeFrom(await grantsOfSubject(db, claims.sub, cacheMs), meshId, fromClaim);
}

/** Everything the token opens (claim entries first, then grant rows), for the session exchange. */
export async function idpEntitlements(db: D1Database, claims: IdpClaims, cacheMs: number): Promise<MeshEntitlement[]> {
  return [...claims.claimed, ...(await grantsOfSubject(db, claims.sub, cacheMs))];
}
