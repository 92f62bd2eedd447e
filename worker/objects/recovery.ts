// Recovery wrappers (PROTOCOL.md section 5): opaque bodies under r/<locator>, outside every
// mesh. Write-once, made atomic by R2's conditional put (two racing first writes: one 201, one 409).
// They need no auth by design, so D1 `recovery_wrappers` holds one row per wrapper for the
// tenant-wide quota (count and bytes), the optional expiry (RECOVERY_TTL_DAYS) and admin totals.
import type { Env } from "../env";
import { HttpError, conflict, unavailable } from "../lib/errors";
import { orUnavailable } from "../lib/unavailable";
import { recoveryKey } from "../lib/paths";
import { r2Call } from "./r2-objects";

export async function putRecoveryWrapper(env: Env, locator: string, body: Uint8Array): Promise<R2Object> {
  let stored: R2Object | null;
  const key = recoveryKey(locator);
  // Tells, when R2's answer is lost, whether this very write landed (then it is this PUT's 201).
  const writeId = crypto.randomUUID();
  try {
    stored = await env.BUCKET.put(key, body, {
      onlyIf: { etagDoesNotMatch: "*" },
      httpMetadata: { contentType: "application/octet-stream" },
      customMetadata: { write: writeId },
    });
  } catch (err) {
    if (err instanceof HttpError) throw err;
    console.error(JSON.stringify({ level: "error", msg: "R2 put failed (recovery)", error: String(err) }));
    const landed = await Promise.resolve()
      .then(() => env.BUCKET.head(key))
      .catch(() => null);
    if (landed !== null && landed.customMetadata?.write === writeId) return landed;
    throw unavailable("Storage did not accept the wrapper; retry.");
  }
  if (stored === null) throw conflict("A recovery wrapper already exists at this locator; wrappers are write-once.");
  return stored;
}

/** The wrapper with its body, or (HEAD) its metadata alone from R2 head(). */
export async function readRecoveryWrapper(
  env: Env,
  locator: string,
  options: { body: boolean } = { body: true },
): Promise<R2ObjectBody | R2Object | null> {
  const key = recoveryKey(locator);
  return options.body ? r2Call("get", () => env.BUCKET.get(key)) : r2Call("head", () => env.BUCKET.head(key));
}

export interface RecoveryQuota {
  maxCount: number;
  maxBytes: number;
}

export interface RecoveryTotals {
  count: number;
  bytes: number;
}

const STORE = "Recovery storage";

export async function recoveryTotals(db: D1Database): Promise<RecoveryTotals> {
  const row = await orUnavailable(STORE, () =>
    db.prepare("SELECT COUNT(*) AS count, COALESCE(SUM(size), 0) AS bytes FROM recovery_wrappers").first<RecoveryTotals>(),
  );
  return { count: row?.count ?? 0, bytes: row?.bytes ?? 0 };
}

/**
 * Reserves the quota for one wrapper in a single statement (so concurrent writers cannot
 * overshoot): 409 when the locator is taken, 429 when the tenant holds the most wrappers it may,
 * 413 when this one would pass the byte quota. A limit of 0 turns that check off.
 */
export async function reserveRecoveryWrapper(
  db: D1Database,
  locator: string,
  size: number,
  quota: RecoveryQuota,
  now = Date.now(),
): Promise<void> {
  const maxCount = quota.maxCount > 0 ? quota.maxCount : Number.MAX_SAFE_INTEGER;
  const maxBytes = quota.maxBytes > 0 ? quota.maxBytes : Number.MAX_SAFE_INTEGER;
  const result = await orUnavailable(STORE, () =>
    db
      .prepare(
        `INSERT OR IGNORE INTO recovery_wrappers (locator, size, created_at)
         SELECT ?1, ?2, ?3
         WHERE (SELECT COUNT(*) FROM recovery_wrappers) < ?4
           AND (SELECT COALESCE(SUM(size), 0) FROM recovery_wrappers) + ?2 <= ?5`,
      )
      .bind(locator, size, now, maxCount, maxBytes)
      .run(),
  );
  if ((result.meta.changes ?? 0) > 0) return;
  const taken = await orUnavailable(STORE, () =>
    db.prepare("SELECT 1 AS one FROM recovery_wrappers WHERE locator = ?").bind(locator).first(),
  );
  if (taken !== null) throw conflict("A recovery wrapper already exists at this locator; wrappers are write-once.");
  const totals = await recoveryTotals(db);
  if (totals.count >= maxCount) {
    throw new HttpError("rate_limited", `This server holds its limit of ${maxCount} recovery wrappers (RECOVERY_MAX_COUNT); none can be added now.`, {
      headers: { "Retry-After": "3600" },
      extra: { limit: maxCount },
    });
  }
  throw new HttpError(
    "payload_too_large",
    `Storing this wrapper would pass this server's recovery quota of ${maxBytes} bytes (RECOVERY_MAX_BYTES; ${totals.bytes} in use).`,
    { extra: { limit: maxBytes } },
  );
}

/** Gives a reservation back (the R2 write did not happen). */
export async function releaseRecoveryWrapper(db: D1Database, locator: string): Promise<void> {
  await orUnavailable(STORE, () => db.prepare("DELETE FROM recovery_wrappers WHERE locator = ?").bind(locator).run());
}

/** Wrappers purged per maintenance run (R2 deletes up to 1000 keys per call). */
export const RECOVERY_PURGE_PER_RUN = 500;

/** Deletes wrappers created before `cutoff` (bodies, then rows). Returns how many went. */
export async function purgeExpiredRecoveryWrappers(env: Env, cutoff: number): Promise<number> {
  const { results } = await orUnavailable(STORE, () =>
    env.DB.prepare("SELECT locator FROM recovery_wrappers WHERE created_at < ? ORDER BY created_at LIMIT ?")
      .bind(cutoff, RECOVERY_PURGE_PER_RUN)
      .all<{ locator: string }>(),
  );
  if (results.length === 0) return 0;
  const locators = results.map((r) => r.locator);
  await r2Call("delete", () => env.BUCKET.delete(locators.map(recoveryKey)));
  await orUnavailable(STORE, () =>
    env.DB.prepare(`DELETE FROM recovery_wrappers WHERE locator IN (SELECT value FROM json_each(?))`)
      .bind(JSON.stringify(locators))
      .run(),
  );
  return locators.length;
}
