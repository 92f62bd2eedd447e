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
  /** Identity-provider tokens: asymmetric only; `none` and HS* are never accepted from an IdP. */
  authAlgorithms: ["RS256", "ES256", "EdDSA"],
  authMeshClaim: "meshes",
  /** jose's createRemoteJWKSet defaults: refetch at most every 30 s on an unknown kid, keep 10 min. */
  jwksCooldownMs: 30_000,
  jwksCacheMaxAgeMs: 600_000,
  /** Failed credentials on IO and notify, per client IP and minute (README "Revocation and limits"). */
  authFailureLimitPerMinute: 60,
  recoveryRateLimitPerMinute: 30,
  recoveryMaxCount: 100_000,
  recoveryMaxBytes: 1024 * MiB,
  pushMaxSocketsPerMesh: 1_000,
  pushMaxSocketsPerSession: 10,
  /** A client only ever sends "ping" (answered without waking the hub). */
  pushMaxMessageBytes: 1 * KiB,
  pushMaxMessagesPerMinute: 60,
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
  /** How long a Worker holds writes to a mesh with no socket open, to send them to the hub together (0: never). */
  pushHoldMs: number;
  /** The same while a socket is open: at most a quiet window, so no frame goes out later for it. */
  pushListeningHoldMs: number;
  sessionTtlSeconds: number;
  revocationCacheMs: number;
  authRateLimitPerMinute: number;
  /** POST /auth/session per client IP per minute (AUTH_RATE_LIMIT_PER_IP, default the per-minute value). */
  authRateLimitPerIp: number;
  /** POST /auth/session per API key per minute (AUTH_RATE_LIMIT_PER_KEY, default the per-minute value). */
  authRateLimitPerKey: number;
  authFailureLimitPerMinute: number;
  recoveryRateLimitPerMinute: number;
  recoveryMaxCount: number;
  recoveryMaxBytes: number;
  /** Recovery wrappers older than this are purged by the cron; null keeps them. */
  recoveryTtlDays: number | null;
  pushMaxSocketsPerMesh: number;
  pushMaxSocketsPerSession: number;
  pushMaxMessageBytes: number;
  pushMaxMessagesPerMinute: number;
  clockToleranceSeconds: number;
  /** Identity-provider tokens; every field is the raw configuration, checked in identity/idp-tokens.ts. */
  idp: IdpConfig;
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

export interface IdpConfig {
  jwksUrl: string | null;
  /** The inline JWKS JSON text (AUTH_JWKS). */
  jwksInline: string | null;
  issuer: string | null;
  audience: string | null;
  /** As configured (AUTH_ALGORITHMS, comma-separated), not yet checked against the allowlist. */
  algorithms: string[];
  meshClaim: string;
  jwksCooldownMs: number;
  jwksCacheMaxAgeMs: number;
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

function text(vars: ConfigVars, name: string): string | null {
  const raw = varOf(vars, name);
  return typeof raw === "string" && raw.trim() !== "" ? raw.trim() : null;
}

function list(vars: ConfigVars, name: string, fallback: readonly string[]): string[] {
  const raw = text(vars, name);
  if (raw === null) return [...fallback];
  return raw.split(",").map((v) => v.trim()).filter((v) => v !== "");
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
  const recoveryTtl = num(vars, "RECOVERY_TTL_DAYS", 0);
  const authPerMinute = num(vars, "AUTH_RATE_LIMIT_PER_MINUTE", DEFAULTS.authRateLimitPerMinute);
  const pushQuietMs = num(vars, "PUSH_QUIET_MS", DEFAULTS.pushQuietMs);
  const pushMaxDelayMs = num(vars, "PUSH_MAX_DELAY_MS", DEFAULTS.pushMaxDelayMs);
  const pushHoldMs = pushHold(vars, pushMaxDelayMs - pushQuietMs);
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
    pushQuietMs,
    pushMaxDelayMs,
    pushHoldMs,
    pushListeningHoldMs: Math.min(pushHoldMs, pushQuietMs),
    sessionTtlSeconds: num(vars, "SESSION_TTL_SECONDS", DEFAULTS.sessionTtlSeconds),
    revocationCacheMs: num(vars, "REVOCATION_CACHE_MS", DEFAULTS.revocationCacheMs),
    authRateLimitPerMinute: authPerMinute,
    authRateLimitPerIp: num(vars, "AUTH_RATE_LIMIT_PER_IP", authPerMinute),
    authRateLimitPerKey: num(vars, "AUTH_RATE_LIMIT_PER_KEY", authPerMinute),
    authFailureLimitPerMinute: num(vars, "AUTH_FAILURE_LIMIT_PER_MINUTE", DEFAULTS.authFailureLimitPerMinute),
    recoveryRateLimitPerMinute: num(vars, "RECOVERY_RATE_LIMIT_PER_MINUTE", DEFAULTS.recoveryRateLimitPerMinute),
    recoveryMaxCount: num(vars, "RECOVERY_MAX_COUNT", DEFAULTS.recoveryMaxCount),
    recoveryMaxBytes: num(vars, "RECOVERY_MAX_BYTES", DEFAULTS.recoveryMaxBytes),
    recoveryTtlDays: recoveryTtl > 0 ? recoveryTtl : null,
    pushMaxSocketsPerMesh: num(vars, "PUSH_MAX_SOCKETS_PER_MESH", DEFAULTS.pushMaxSocketsPerMesh),
    pushMaxSocketsPerSession: num(vars, "PUSH_MAX_SOCKETS_PER_SESSION", DEFAULTS.pushMaxSocketsPerSession),
    pushMaxMessageBytes: num(vars, "PUSH_MAX_MESSAGE_BYTES", DEFAULTS.pushMaxMessageBytes),
    pushMaxMessagesPerMinute: num(vars, "PUSH_MAX_MESSAGES_PER_MINUTE", DEFAULTS.pushMaxMessagesPerMinute),
    clockToleranceSeconds: DEFAULTS.clockToleranceSeconds,
    idp: {
      jwksUrl: text(vars, "AUTH_JWKS_URL"),
      jwksInline: text(vars, "AUTH_JWKS"),
      issuer: text(vars, "AUTH_ISSUER"),
      audience: text(vars, "AUTH_AUDIENCE"),
      algorithms: list(vars, "AUTH_ALGORITHMS", DEFAULTS.authAlgorithms),
      meshClaim: text(vars, "AUTH_MESH_CLAIM") ?? DEFAULTS.authMeshClaim,
      jwksCooldownMs: num(vars, "AUTH_JWKS_COOLDOWN_MS", DEFAULTS.jwksCooldownMs),
      jwksCacheMaxAgeMs: num(vars, "AUTH_JWKS_CACHE_MS", DEFAULTS.jwksCacheMaxAgeMs),
    },
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

/**
 * PUSH_HOLD_MS, by default `most` (the max delay less a quiet window), and never more: a socket
 * that opens while writes are held must still hear of them within the max delay.
 */
function pushHold(vars: ConfigVars, most: number): number {
  const bound = Math.max(0, most);
  return Math.min(bound, num(vars, "PUSH_HOLD_MS", bound));
}

/** What an embedding app may set in code instead of vars (worker/meshbox.ts documents each). */
export interface ConfigOverrides {
  mountPrefix?: string;
  corsOrigins?: "*" | string[];
  limits?: Partial<Limits>;
}

function definedOnly<T extends object>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * A view of `vars` (same bindings and vars, through the prototype) whose readConfig is
 * readConfig(vars) with the overrides applied. Every module keeps calling readConfig(env), so an
 * embedding app's options reach them without a config parameter threaded through each call.
 */
export function overlayConfig<T extends object>(vars: T, overrides: ConfigOverrides): T {
  const base = readConfig(vars);
  const view = Object.create(vars) as T;
  cache.set(view, {
    ...base,
    mountPrefix:
      overrides.mountPrefix === undefined
        ? base.mountPrefix
        : overrides.mountPrefix.trim() === "" ? "" : normalizePrefix(overrides.mountPrefix),
    corsOrigins: overrides.corsOrigins ?? base.corsOrigins,
    limits: { ...base.limits, ...definedOnly(overrides.limits ?? {}) },
  });
  return view;
}
