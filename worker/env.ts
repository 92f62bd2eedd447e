// The Worker's bindings and configuration, typed once (hand-written; no `wrangler types` output).
import type { MeshHub } from "../durable-objects/mesh-hub";

export interface Env {
  BUCKET: R2Bucket;
  DB: D1Database;
  /**
   * Index shards (README "Index shards"): the per-mesh tables spread over INDEX_DB_0 .. INDEX_DB_<N-1>,
   * counted up to the first gap. None bound: DB holds them (N = 1). Typed here up to 16; more are
   * found by name at run time (worker/shards/shard-bindings.ts).
   */
  INDEX_DB_0?: D1Database;
  INDEX_DB_1?: D1Database;
  INDEX_DB_2?: D1Database;
  INDEX_DB_3?: D1Database;
  INDEX_DB_4?: D1Database;
  INDEX_DB_5?: D1Database;
  INDEX_DB_6?: D1Database;
  INDEX_DB_7?: D1Database;
  INDEX_DB_8?: D1Database;
  INDEX_DB_9?: D1Database;
  INDEX_DB_10?: D1Database;
  INDEX_DB_11?: D1Database;
  INDEX_DB_12?: D1Database;
  INDEX_DB_13?: D1Database;
  INDEX_DB_14?: D1Database;
  INDEX_DB_15?: D1Database;
  /** The shard that held every mesh before shards were added; meshes absent from the directory are read there. */
  INDEX_LEGACY_SHARD?: string;
  MESH_HUB: DurableObjectNamespace<MeshHub>;
  /** The upstream runtime's database and bucket, bound only for `migrate-upstream` (README "Moving in"). */
  LEGACY_DB?: D1Database;
  LEGACY_FILES?: R2Bucket;

  // Auth (see README "Auth"). Secrets are set with `wrangler secret put`.
  ALLOW_OPEN_ACCESS?: string;
  MESH_TOKEN_SECRET?: string;
  SESSION_SIGNING_KEY?: string;
  SESSION_SIGNING_KEY_PREVIOUS?: string;
  ADMIN_TOKEN?: string;
  MESH_ID_CHECKSUM_SECRET?: string;
  REQUIRE_CHECKSUMMED_MESH_IDS?: string;
  CONCEAL_DENIED?: string;
  TENANT?: string;
  SESSION_TTL_SECONDS?: string;
  REVOCATION_CACHE_MS?: string;
  AUTH_RATE_LIMIT_PER_MINUTE?: string;
  // Identity-provider tokens (JWKS).
  AUTH_JWKS_URL?: string;
  AUTH_JWKS?: string;
  AUTH_ISSUER?: string;
  AUTH_AUDIENCE?: string;
  AUTH_ALGORITHMS?: string;
  AUTH_MESH_CLAIM?: string;
  AUTH_JWKS_COOLDOWN_MS?: string;
  AUTH_JWKS_CACHE_MS?: string;
  AUTH_RATE_LIMIT_PER_IP?: string;
  AUTH_RATE_LIMIT_PER_KEY?: string;
  AUTH_FAILURE_LIMIT_PER_MINUTE?: string;

  // Recovery wrappers (README "Revocation and limits").
  RECOVERY_RATE_LIMIT_PER_MINUTE?: string;
  RECOVERY_MAX_COUNT?: string;
  RECOVERY_MAX_BYTES?: string;
  RECOVERY_TTL_DAYS?: string;

  // Push sockets.
  PUSH_MAX_SOCKETS_PER_MESH?: string;
  PUSH_MAX_SOCKETS_PER_SESSION?: string;
  PUSH_MAX_MESSAGE_BYTES?: string;
  PUSH_MAX_MESSAGES_PER_MINUTE?: string;

  // Routing and CORS.
  MOUNT_PREFIX?: string;
  CORS_ORIGINS?: string;

  // Limits (bytes) and timings (ms); defaults in lib/config.ts.
  LIMIT_CONTROL_BYTES?: string;
  LIMIT_CHANGE_BYTES?: string;
  LIMIT_SNAPSHOT_BYTES?: string;
  LIMIT_OTHER_BYTES?: string;
  LIMIT_STORED_FILE_BYTES?: string;
  LIMIT_STORED_MESH_BYTES?: string;
  CANDIDATE_LEASE_MS?: string;
  DELETED_CHANGE_LISTING_MS?: string;
  DELETED_CHANGE_GRACE_MS?: string;
  PUSH_QUIET_MS?: string;
  PUSH_MAX_DELAY_MS?: string;
  PUSH_HOLD_MS?: string;

  // Operations.
  IDLE_MESH_TTL_DAYS?: string;
  LOG_REQUESTS?: string;
}
