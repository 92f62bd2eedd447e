// Session JWTs (jose, HS256): signing with the current key, verifying with the current or the
// previous key selected by `kid`, so a key rotation keeps old tokens valid until they expire.
import { SignJWT, jwtVerify, type JWTHeaderParameters, type FlattenedJWSInput } from "jose";
import { isValidMeshPattern } from "./mesh-id";
import { sha256Hex } from "./secrets";

export const SESSION_AUDIENCE = "meshbox";

export type Scope = "full" | "readonly";

/** HS256 wants a key at least as long as its output; shorter ones are refused as misconfiguration. */
export const MIN_SIGNING_KEY_LENGTH = 32;

export interface SessionClaims {
  sub: string;
  /** Exact mesh id, "*", or a prefix ending in "*". */
  mesh: string;
  scope: Scope;
  jti: string;
  /** Epoch seconds. */
  iat: number;
  exp: number;
}

interface SigningKey {
  kid: string;
  key: CryptoKey;
}

export interface SigningKeys {
  current: SigningKey;
  previous: SigningKey | null;
}

const encoder = new TextEncoder();
// Per isolate: deriving the kid and importing the HMAC key once per secret, not per request.
const keyCache = new Map<string, Promise<SigningKey>>();

/**
 * The kid is derived from the key itself, so rotating is only "move the old key to
 * SESSION_SIGNING_KEY_PREVIOUS, set a new SESSION_SIGNING_KEY": no extra id to keep in sync.
 * It reveals nothing usable about the key (16 hex of a domain-separated SHA-256).
 */
function signingKeyOf(secret: string): Promise<SigningKey> {
  let pending = keyCache.get(secret);
  if (pending === undefined) {
    pending = (async () => ({
      kid: (await sha256Hex(`meshbox-session-kid:${secret}`)).slice(0, 16),
      key: await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
        "sign",
        "verify",
      ]),
    }))();
    if (keyCache.size >= 16) keyCache.clear();
    keyCache.set(secret, pending);
  }
  return pending;
}

/** Null when sessions are not configured (no SESSION_SIGNING_KEY). */
export async function signingKeysFrom(
  currentSecret: string | undefined,
  previousSecret: string | undefined,
): Promise<SigningKeys | null> {
  if (currentSecret === undefined || currentSecret === "") return null;
  const current = await signingKeyOf(currentSecret);
  const previous =
    previousSecret !== undefined && previousSecret !== "" && previousSecret !== currentSecret
      ? await signingKeyOf(previousSecret)
      : null;
  return { current, previous };
}

export async function signSessionToken(keys: SigningKeys, issuer: string, claims: SessionClaims): Promise<string> {
  return new SignJWT({ mesh: claims.mesh, scope: claims.scope })
    .setProtectedHeader({ alg: "HS256", typ: "JWT", kid: keys.current.kid })
    .setIssuer(issuer)
    .setAudience(SESSION_AUDIENCE)
    .setSubject(claims.sub)
    .setJti(claims.jti)
    .setIssuedAt(claims.iat)
    .setExpirationTime(claims.exp)
    .sign(keys.current.key);
}

/** A compact JWS: three base64url segments. Anything else is never handed to jose. */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
}

export interface VerifyOptions {
  issuer: string;
  clockToleranceSeconds: number;
  /** Epoch ms; defaults to now. */
  now?: number;
}

/**
 * Per isolate: tokens already verified, by SHA-256 of the token (the token itself is never kept),
 * the verifying keys' kids and the issuer, so a rotated-out key or another tenant never hits. Only
 * exp can turn a verified token invalid later, and it is checked on every hit as jose checks it.
 * Bounded by count. Revocation is not cached here: the caller checks it on every request.
 */
const MAX_VERIFIED = 10_000;
const verified = new Map<string, SessionClaims>();

/**
 * The token's claims when it is a valid, current session token of this tenant, else null.
 * Only HS256 is accepted (so `alg: none` and algorithm confusion fail), the kid must name one
 * of our keys, and iss/aud/exp/nbf are checked with the configured clock tolerance.
 */
export async function verifySessionToken(
  token: string,
  keys: SigningKeys,
  options: VerifyOptions,
): Promise<SessionClaims | null> {
  if (!looksLikeJwt(token)) return null;
  const nowMs = options.now ?? Date.now();
  const cacheKey = `${keys.current.kid}:${keys.previous?.kid ?? ""}:${options.issuer}:${await sha256Hex(token)}`;
  const hit = verified.get(cacheKey);
  if (hit !== undefined) {
    if (hit.exp > Math.floor(nowMs / 1000) - options.clockToleranceSeconds) return hit;
    verified.delete(cacheKey);
    return null;
  }
  const claims = await verifyUncached(token, keys, options, nowMs);
  if (claims !== null) {
    if (verified.size >= MAX_VERIFIED) verified.clear();
    verified.set(cacheKey, claims);
  }
  return claims;
}

async function verifyUncached(
  token: string,
  keys: SigningKeys,
  options: VerifyOptions,
  nowMs: number,
): Promise<SessionClaims | null> {
  const keyFor = (header: JWTHeaderParameters, _token: FlattenedJWSInput): CryptoKey => {
    if (header.kid === keys.current.kid) return keys.current.key;
    if (keys.previous !== null && header.kid === keys.previous.kid) return keys.previous.key;
    throw new Error("unknown kid");
  };
  let payload: Record<string, unknown>;
  try {
    const verified = await jwtVerify(token, keyFor, {
      algorithms: ["HS256"],
      issuer: options.issuer,
      audience: SESSION_AUDIENCE,
      clockTolerance: options.clockToleranceSeconds,
      currentDate: new Date(nowMs),
      requiredClaims: ["sub", "jti", "iat", "exp"],
    });
    payload = verified.payload as Record<string, unknown>;
  } catch {
    return null;
  }
  const { sub, mesh, scope, jti, iat, exp } = payload;
  if (typeof sub !== "string" || sub === "") return null;
  if (typeof jti !== "string" || jti === "") return null;
  if (!isValidMeshPattern(mesh)) return null;
  if (scope !== "full" && scope !== "readonly") return null;
  if (typeof iat !== "number" || typeof exp !== "number") return null;
  // jose accepts an iat in the future; a token "issued" later than now is not valid yet.
  if (iat * 1000 > nowMs + options.clockToleranceSeconds * 1000) return null;
  return { sub, mesh, scope, jti, iat, exp };
}
