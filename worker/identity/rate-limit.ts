// Fixed-window rate limits (a window per bucket, opened by its first hit), shared by every
// isolate through D1 `rate_limits`: one atomic upsert per hit, so no read-then-write race. The
// Workers rate-limiting binding is cheaper but per-location and approximate, and auth endpoints
// are rare enough for D1.
import { HttpError } from "../lib/errors";
import { orUnavailable } from "../lib/unavailable";

export interface RateVerdict {
  allowed: boolean;
  /** Hits counted in the current window, this one included. */
  count: number;
  /** Whole seconds until the window resets (at least 1). */
  retryAfterSeconds: number;
}

/**
 * Counts one hit on `bucket` and says whether it is within `limit` per `windowMs`. A limit of 0
 * disables the check (nothing is written).
 */
export async function hitRateLimit(
  db: D1Database,
  bucket: string,
  limit: number,
  windowMs: number,
  now = Date.now(),
): Promise<RateVerdict> {
  if (limit <= 0) return { allowed: true, count: 0, retryAfterSeconds: 1 };
  // A window opens at a bucket's first hit (not at clock-aligned boundaries) and lasts
  // windowMs; a hit from an isolate whose clock is slightly behind counts in the open window.
  const row = await orUnavailable("Rate-limit storage", () =>
    db
      .prepare(
        `INSERT INTO rate_limits (bucket, window_start, count) VALUES (?1, ?2, 1)
         ON CONFLICT (bucket) DO UPDATE SET
           count = CASE WHEN ?2 - rate_limits.window_start < ?3 THEN rate_limits.count + 1 ELSE 1 END,
           window_start = CASE WHEN ?2 - rate_limits.window_start < ?3 THEN rate_limits.window_start ELSE ?2 END
         RETURNING count, window_start`,
      )
      .bind(bucket, now, windowMs)
      .first<{ count: number; window_start: number }>(),
  );
  const count = row?.count ?? 1;
  const start = row?.window_start ?? now;
  const retryAfterSeconds = Math.max(1, Math.ceil((start + windowMs - now) / 1000));
  return { allowed: count <= limit, count, retryAfterSeconds };
}

/** Throws 429 rate_limited with Retry-After when the hit is over the limit. */
export async function enforceRateLimit(
  db: D1Database,
  bucket: string,
  limit: number,
  windowMs: number,
  now = Date.now(),
): Promise<void> {
  const verdict = await hitRateLimit(db, bucket, limit, windowMs, now);
  if (verdict.allowed) return;
  throw new HttpError("rate_limited", `Too many requests; retry in ${verdict.retryAfterSeconds} s.`, {
    headers: { "Retry-After": String(verdict.retryAfterSeconds) },
    extra: { retryAfter: verdict.retryAfterSeconds },
  });
}

/** Drops counters whose window ended before `now` (maintenance). Returns how many went. */
export async function deleteStaleRateLimits(db: D1Database, now: number, windowMs = 60_000): Promise<number> {
  const result = await orUnavailable("Rate-limit storage", () =>
    db.prepare("DELETE FROM rate_limits WHERE window_start < ?").bind(now - windowMs).run(),
  );
  return result.meta.changes ?? 0;
}
