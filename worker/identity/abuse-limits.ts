// Per-client limits that an attacker cannot turn against other users: which bucket a request
// counts in, and failed credentials on IO and notify (counted only when they fail, so good
// traffic pays no extra D1 write). README "Revocation and limits" documents the rules.
import { HttpError } from "../lib/errors";
import { enforceRateLimit, hitRateLimit } from "./rate-limit";

export const RATE_WINDOW_MS = 60_000;

/**
 * The client IP Cloudflare's edge sets on every request from the internet, or null. A request
 * without CF-Connecting-IP did not come through the edge: a service binding or another Worker of
 * the account, or local development. It is not counted in any per-IP bucket (one shared bucket
 * would let anyone able to send such requests lock out every such caller); its per-key limits
 * still apply. Client-supplied headers (X-Forwarded-For) are never trusted for this: anyone can
 * rotate them.
 */
export function clientIp(request: Request): string | null {
  const ip = request.headers.get("CF-Connecting-IP")?.trim();
  return ip ? ip : null;
}

/** Counts a hit on `<scope>:<ip>`; 429 over `limit` a minute. No IP or limit 0: no check. */
export async function enforceIpLimit(db: D1Database, scope: string, request: Request, limit: number): Promise<void> {
  const ip = clientIp(request);
  if (ip === null || limit <= 0) return;
  await enforceRateLimit(db, `${scope}:${ip}`, limit, RATE_WINDOW_MS);
}

// IPs over the failure limit, per isolate: while blocked, their failures answer 429 with no D1
// write at all, so a flood of bad tokens costs one D1 write per isolate per window.
const blockedUntil = new Map<string, number>();
const BLOCKED_MAX = 10_000;

function tooMany(retryAfterSeconds: number): HttpError {
  return new HttpError("rate_limited", `Too many failed credentials from this address; retry in ${retryAfterSeconds} s.`, {
    headers: { "Retry-After": String(retryAfterSeconds) },
    extra: { retryAfter: retryAfterSeconds },
  });
}

/**
 * Called only when a credential failed (401): counts the failure for the client's IP and, over
 * `limit` a minute, answers 429 instead of the 401. A valid credential from a blocked IP still
 * passes: the limit slows guessing, it does not lock anyone out.
 */
export async function countCredentialFailure(db: D1Database, request: Request, limit: number, now = Date.now()): Promise<void> {
  const ip = clientIp(request);
  if (ip === null || limit <= 0) return;
  const until = blockedUntil.get(ip);
  if (until !== undefined && until > now) throw tooMany(Math.max(1, Math.ceil((until - now) / 1000)));
  const verdict = await hitRateLimit(db, `auth-fail-ip:${ip}`, limit, RATE_WINDOW_MS, now);
  if (verdict.allowed) return;
  if (blockedUntil.size >= BLOCKED_MAX) blockedUntil.clear();
  blockedUntil.set(ip, now + verdict.retryAfterSeconds * 1000);
  throw tooMany(verdict.retryAfterSeconds);
}
