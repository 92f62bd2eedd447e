// API keys (D1 `api_keys`): only a SHA-256 hash of each key is stored; the key itself is shown
// once, at creation. A key mints session JWTs for the meshes its pattern names.
import type { Env } from "../env";
import { badRequest } from "../lib/errors";
import { isValidMeshPattern } from "../lib/mesh-id";
import { constantTimeEqual, randomBase64Url, randomHex, sha256Hex } from "../lib/secrets";
import { closeSessionSockets, revokeSessionsOfKeyStatement, sessionsRevokedBy } from "./sessions";
import { orUnavailable } from "../lib/unavailable";

const STORE = "Key storage";

export type KeyAccess = "full" | "readonly";

export interface ApiKeyRecord {
  id: string;
  name: string;
  /** Exact mesh id, "*", or a prefix ending in "*". */
  meshPattern: string;
  access: KeyAccess;
  /** ISO-8601. */
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export interface NewApiKey {
  name: string;
  meshPattern: string;
  access: KeyAccess;
}

interface ApiKeyRow {
  id: string;
  name: string;
  key_hash: string;
  mesh_pattern: string;
  access: KeyAccess;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

const COLUMNS = "id, name, key_hash, mesh_pattern, access, created_at, last_used_at, revoked_at";
const KEY_FORMAT = /^mbk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/;
const MAX_NAME_LENGTH = 200;
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function toRecord(row: ApiKeyRow): ApiKeyRecord {
  return {
    id: row.id,
    name: row.name,
    meshPattern: row.mesh_pattern,
    access: row.access,
    createdAt: new Date(row.created_at).toISOString(),
    lastUsedAt: iso(row.last_used_at),
    revokedAt: iso(row.revoked_at),
  };
}

/** Hash of a key as stored; domain-separated so it can never be mistaken for another digest. */
export function hashApiKey(key: string): Promise<string> {
  return sha256Hex(`meshbox-api-key:${key}`);
}

/**
 * Creates a key `mbk_<id>_<43 chars of base64url>` (256 random bits). Returns the key once,
 * with its record; only the hash is stored. Bad input is the caller's mistake (400).
 */
export async function createApiKey(
  db: D1Database,
  input: NewApiKey,
  now = Date.now(),
): Promise<ApiKeyRecord & { key: string }> {
  const { name, meshPattern, access } = input as Partial<Record<keyof NewApiKey, unknown>>;
  if (typeof name !== "string" || name.trim() === "" || name.length > MAX_NAME_LENGTH) {
    throw badRequest(`name must be a non-empty string of at most ${MAX_NAME_LENGTH} characters.`);
  }
  if (!isValidMeshPattern(meshPattern)) {
    throw badRequest('meshPattern must be a mesh id, "*", or a prefix ending in "*".');
  }
  if (access !== "full" && access !== "readonly") {
    throw badRequest('access must be "full" or "readonly".');
  }
  const id = randomHex(8);
  const key = `mbk_${id}_${randomBase64Url(32)}`;
  const keyHash = await hashApiKey(key);
  await orUnavailable(STORE, () =>
    db
      .prepare(`INSERT INTO api_keys (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)`)
      .bind(id, name.trim(), keyHash, meshPattern, access, now)
      .run(),
  );
  return {
    id,
    key,
    name: name.trim(),
    meshPattern,
    access,
    createdAt: new Date(now).toISOString(),
    lastUsedAt: null,
    revokedAt: null,
  };
}

export async function listApiKeys(db: D1Database): Promise<ApiKeyRecord[]> {
  const { results } = await orUnavailable(STORE, () =>
    db.prepare(`SELECT ${COLUMNS} FROM api_keys ORDER BY created_at, id LIMIT 10000`).all<ApiKeyRow>(),
  );
  return results.map(toRecord);
}

export async function getApiKey(db: D1Database, id: string): Promise<ApiKeyRecord | null> {
  const row = await orUnavailable(STORE, () =>
    db.prepare(`SELECT ${COLUMNS} FROM api_keys WHERE id = ?`).bind(id).first<ApiKeyRow>(),
  );
  return row === null ? null : toRecord(row);
}

/**
 * The live (unrevoked) key this presented secret is, or null. The lookup is by hash (the
 * stored value is a digest an attacker cannot steer), and the found hash is compared again in
 * constant time so the answer never rests on the index alone.
 */
export async function findLiveApiKey(db: D1Database, presented: string): Promise<ApiKeyRecord | null> {
  const hash = await hashApiKey(presented);
  if (!KEY_FORMAT.test(presented)) return null;
  const row = await orUnavailable(STORE, () =>
    db.prepare(`SELECT ${COLUMNS} FROM api_keys WHERE key_hash = ?`).bind(hash).first<ApiKeyRow>(),
  );
  if (row === null || !constantTimeEqual(hash, row.key_hash) || row.revoked_at !== null) return null;
  return toRecord(row);
}

export function touchApiKeyStatement(db: D1Database, id: string, now: number): D1PreparedStatement {
  return db.prepare("UPDATE api_keys SET last_used_at = ? WHERE id = ?").bind(now, id);
}

/**
 * Revokes a key (idempotent: the first revocation time is kept), revokes every session it
 * minted, and asks the hubs to close those sessions' sockets. Null when no such key exists.
 */
export async function revokeApiKey(
  env: Env,
  id: string,
  now = Date.now(),
): Promise<(ApiKeyRecord & { sessionsRevoked: number }) | null> {
  const [keyResult, sessionsResult] = await orUnavailable(STORE, () =>
    env.DB.batch([
      env.DB.prepare(`UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? RETURNING ${COLUMNS}`).bind(
        now,
        id,
      ),
      revokeSessionsOfKeyStatement(env.DB, id, now),
    ]),
  );
  const row = (keyResult?.results[0] as ApiKeyRow | undefined) ?? null;
  if (row === null) return null;
  const sessions = sessionsRevokedBy(sessionsResult);
  await closeSessionSockets(env, sessions);
  return { ...toRecord(row), sessionsRevoked: sessions.length };
}
