// Every limit, default and tunable in one place, read from the Worker's vars (strings).
// lib/ is the ground floor: this module imports nothing else of the project.

const KiB = 1024;
const MiB = 1024 * KiB;

export const DEFAULTS = {
  mountPrefix: "/sync",
  limits: {
    control: 256 * KiB,
    change: 8 * MiB,
    snapshot: 100 * MiB,
    other: 8 * MiB,
    recovery: 256 * KiB,
    storedFile: 32 * MiB,
    storedMeshTotal: 512 * MiB,
    /** JSON request bodies of the POST routes ({path}). */
    jsonBody: 16 * KiB,
  },
  candidateLeaseMs: 60_000,
  /** PROTOCOL.md section 3 "Deleted change files": how long a deleted change file stays listed. */
  deletedChangeListingMs: 10 * 60_000,
  /** How long its bytes stay readable by exact GET; always longer than the listing window. */
  deletedChangeGraceMs: 20 * 60_000,
  pushQuietMs: 100,
  pushMaxDelayMs: 1_000,
  sessionTtlSeconds: 3_600,
  revocationCacheMs: 10_000,
  authRateLimitPerMinute: 30,
  clockToleranceSeconds: 30,
} as const;

export interface Limits {
  control: number;
  change: number;
  snapshot: number;
  other: number;
  recovery: number;
  storedFile: number;
  storedMeshTotal: number;
  jsonBody: number;
}

export interface Config {
  mountPrefix: string;
  /** "*" or an exact allowlist of origins. */
  corsOrigins: "*" | string[];
  limits: Limits;
  candidateLeaseMs: number;
  deletedChangeListingMs: number;
  deletedChangeGraceMs: number;
  pushQuietMs: number;
  pushMaxDelayMs: number;
  sessionTtlSeconds: number;
  revocationCacheMs: number;
  authRateLimitPerMinute: number;
  clockToleranceSeconds: number;
  tenant: string;
  allowOpenAccess: boolean;
  concealDenied: boolean;
  requireChecksummedMeshIds: boolean;
  /** Idle-mesh cleanup is off unless a TTL is set. */
  idleMeshTtlDays: number | null;
  logRequests: boolean;
}

/**
 * A configuration the Worker must not run with. index.ts answers every request with 503 while it
 * stands (the operator's mistake, never the client's), and the message names the var to fix.
 */
export class ConfigError extends Error {
  constructor(message: string) {
    super(`meshbox config: ${message}`);
    this.name = "ConfigError";
  }
}

/** Only the vars this module reads; Env satisfies it structurally. */
export type ConfigVars = object;

function varOf(vars: ConfigVars, name: string): unknown {
  return (vars as Record<string, unknown>)[name];
}

function num(vars: ConfigVars, name: string, fallback: number): number {
  const raw = varOf(vars, name);
  if (typeof raw !== "string" || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is not a non-negative number; fix the var in wrangler.toml.`);
  }
  return value;
}

function flag(vars: ConfigVars, name: string): boolean {
  const raw = varOf(vars, name);
  return raw === "1" || raw === "true";
}

function normalizePrefix(raw: unknown): string {
  if (typeof raw !== "string" || raw.trim() === "") return DEFAULTS.mountPrefix;
  const trimmed = raw.trim().replace(/\/+$/, "");
  if (trimmed === "") return "";
  return trimmed.startsWith("/") ? trimmed : `/${trimmed}`;
}

/**
 * A name listed at the window's last moment must still be readable when the puller GETs it, so the
 * grace must outlast the listing window. A window of 0 (deleted change files leave listings at
 * once, as upstream does) lists nothing, so any grace goes with it.
 */
function checkDeletedChangeTimings(listingMs: number, graceMs: number): void {
  if (listingMs > 0 && graceMs <= listingMs) {
    throw new ConfigError(
      `DELETED_CHANGE_GRACE_MS (${graceMs}) must be greater than DELETED_CHANGE_LISTING_MS (${listingMs}): ` +
        "a deleted change file listed at the window's last moment must still be readable; fix the vars in wrangler.toml.",
    );
  }
}

const cache = new WeakMap<object, Config>();

/** Parsed once per env object (per isolate), not per request. */
export function readConfig(vars: ConfigVars): Config {
  const cached = cache.get(vars);
  if (cached) return cached;
  const rawOrigins = varOf(vars, "CORS_ORIGINS");
  const origins = typeof rawOrigins === "string" ? rawOrigins.trim() : "";
  const tenant = varOf(vars, "TENANT");
  const idleTtl = num(vars, "IDLE_MESH_TTL_DAYS", 0);
  const config: Config = {
    mountPrefix: normalizePrefix(varOf(vars, "MOUNT_PREFIX")),
    corsOrigins:
      origins === "" || origins === "*"
        ? "*"
        : origins.split(",").map((o) => o.trim()).filter((o) => o !== ""),
    limits: {
      control: num(vars, "LIMIT_CONTROL_BYTES", DEFAULTS.limits.control),
      change: num(vars, "LIMIT_CHANGE_BYTES", DEFAULTS.limits.change),
      snapshot: num(vars, "LIMIT_SNAPSHOT_BYTES", DEFAULTS.limits.snapshot),
      other: num(vars, "LIMIT_OTHER_BYTES", DEFAULTS.limits.other),
      recovery: num(vars, "LIMIT_CONTROL_BYTES", DEFAULTS.limits.recovery),
      storedFile: num(vars, "LIMIT_STORED_FILE_BYTES", DEFAULTS.limits.storedFile),
      storedMeshTotal: num(vars, "LIMIT_STORED_MESH_BYTES", DEFAULTS.limits.storedMeshTotal),
      jsonBody: DEFAULTS.limits.jsonBody,
    },
    candidateLeaseMs: num(vars, "CANDIDATE_LEASE_MS", DEFAULTS.candidateLeaseMs),
    deletedChangeListingMs: num(vars, "DELETED_CHANGE_LISTING_MS", DEFAULTS.deletedChangeListingMs),
    deletedChangeGraceMs: num(vars, "DELETED_CHANGE_GRACE_MS", DEFAULTS.deletedChangeGraceMs),
    pushQuietMs: num(vars, "PUSH_QUIET_MS", DEFAULTS.pushQuietMs),
    pushMaxDelayMs: num(vars, "PUSH_MAX_DELAY_MS", DEFAULTS.pushMaxDelayMs),
    sessionTtlSeconds: num(vars, "SESSION_TTL_SECONDS", DEFAULTS.sessionTtlSeconds),
    revocationCacheMs: num(vars, "REVOCATION_CACHE_MS", DEFAULTS.revocationCacheMs),
    authRateLimitPerMinute: num(vars, "AUTH_RATE_LIMIT_PER_MINUTE", DEFAULTS.authRateLimitPerMinute),
    clockToleranceSeconds: DEFAULTS.clockToleranceSeconds,
    tenant: typeof tenant === "string" && tenant !== "" ? tenant : "meshbox",
    allowOpenAccess: flag(vars, "ALLOW_OPEN_ACCESS"),
    concealDenied: flag(vars, "CONCEAL_DENIED"),
    requireChecksummedMeshIds: flag(vars, "REQUIRE_CHECKSUMMED_MESH_IDS"),
    idleMeshTtlDays: idleTtl > 0 ? idleTtl : null,
    logRequests: varOf(vars, "LOG_REQUESTS") !== "0",
  };
  checkDeletedChangeTimings(config.deletedChangeListingMs, config.deletedChangeGraceMs);
  cache.set(vars, config);
  return config;
}
