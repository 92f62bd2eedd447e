// Issued session JWTs (D1 `sessions`): recording, the revocation check with its per-isolate
// cache, revocation (which also closes the session's sockets on every hub it holds them on),
// listing and expiry cleanup.
import type { Env } from "../env";
import { HttpError } from "../lib/errors";
import { orUnavailable } from "../lib/unavailable";
import { exactMeshOf, isValidMeshPattern, meshPatternsOverlap } from "../lib/mesh-id";
import { MAX_FANOUT_MESHES, meshesWithSockets } from "./socket-meshes";

export type SessionScope = "full" | "readonly";

/** Storage sits below hub-client.ts, so it addresses the mesh's hub through the binding itself. */
function hubOf(env: Env, meshId: string) {
  return env.MESH_HUB.get(env.MESH_HUB.idFromName(meshId));
}

/** WebSocket close code for a socket whose session was revoked (4401 is for expiry). */
export const REVOKED_CLOSE_CODE = 4403;

export interface SessionRecord {
  jti: string;
  keyId: string;
  subject: string;
  meshPattern: string;
  scope: SessionScope;
  /** ISO-8601. */
  issuedAt: string;
  expiresAt: string;
  revokedAt: string | null;
}

export interface NewSession {
  jti: string;
  keyId: string;
  subject: string;
  meshPattern: string;
  scope: SessionScope;
  /** Epoch ms. */
  issuedAt: number;
  expiresAt: number;
}

interface SessionRow {
  jti: string;
  key_id: string;
  subject: string;
  mesh_pattern: string;
  scope: SessionScope;
  issued_at: number;
  expires_at: number;
  revoked_at: number | null;
}

const COLUMNS = "jti, key_id, subject, mesh_pattern, scope, issued_at, expires_at, revoked_at";
const iso = (ms: number) => new Date(ms).toISOString();

function toRecord(row: SessionRow): SessionRecord {
  return {
    jti: row.jti,
    keyId: row.key_id,
    subject: row.subject,
    meshPattern: row.mesh_pattern,
    scope: row.scope,
    issuedAt: iso(row.issued_at),
    expiresAt: iso(row.expires_at),
    revokedAt: row.revoked_at === null ? null : iso(row.revoked_at),
  };
}

const STORE = "Session storage";

/**
 * The statement that records a session, for batching with the key's last-used update. It only
 * inserts while the minting key is unrevoked, so a session minted concurrently with its key's
 * revocation is either caught by that revocation or never recorded (meta.changes === 0).
 */
export function insertSessionStatement(db: D1Database, session: NewSession): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO sessions (${COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ?, NULL
       WHERE EXISTS (SELECT 1 FROM api_keys WHERE id = ? AND revoked_at IS NULL)`,
    )
    .bind(
      session.jti,
      session.keyId,
      session.subject,
      session.meshPattern,
      session.scope,
      session.issuedAt,
      session.expiresAt,
      session.keyId,
    );
}

/** The key id recorded for sessions exchanged from an identity-provider token (no API key has it). */
export const IDP_SESSION_KEY_ID = "idp";

/** The statement that records a session exchanged from an identity-provider token. */
export function insertIdpSessionStatement(db: D1Database, session: Omit<NewSession, "keyId">): D1PreparedStatement {
  return db
    .prepare(`INSERT INTO sessions (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)`)
    .bind(
      session.jti,
      IDP_SESSION_KEY_ID,
      session.subject,
      session.meshPattern,
      session.scope,
      session.issuedAt,
      session.expiresAt,
    );
}

export async function findSession(db: D1Database, jti: string): Promise<SessionRecord | null> {
  const row = await orUnavailable(STORE, () =>
    db.prepare(`SELECT ${COLUMNS} FROM sessions WHERE jti = ?`).bind(jti).first<SessionRow>(),
  );
  return row === null ? null : toRecord(row);
}

// Per-isolate revocation cache: jti -> (the record's verdict, checked at). Revocation takes
// effect over HTTP within REVOCATION_CACHE_MS on other isolates, at once on the isolate that
// revoked. The record's mesh pattern and scope are cached with it, so binding a token to its
// record costs no D1 read beyond the revocation check.
interface CachedSession {
  live: boolean;
  meshPattern: string | null;
  scope: SessionScope | null;
  checkedAt: number;
}
const revocationCache = new Map<string, CachedSession>();
const REVOCATION_CACHE_MAX_ENTRIES = 10_000;

function remember(jti: string, entry: CachedSession): void {
  if (revocationCache.size >= REVOCATION_CACHE_MAX_ENTRIES) {
    // Map iteration is insertion order: drop the oldest tenth rather than one per insert.
    let drop = Math.ceil(REVOCATION_CACHE_MAX_ENTRIES / 10);
    for (const key of revocationCache.keys()) {
      if (drop-- <= 0) break;
      revocationCache.delete(key);
    }
  }
  revocationCache.delete(jti);
  revocationCache.set(jti, entry);
}

/** What a verified token claims, to be matched against its record. */
export interface PresentedSession {
  jti: string;
  mesh: string;
  scope: SessionScope;
}

/**
 * Whether a (signature-verified) session is still live and is the session its record describes:
 * recorded, not revoked, and carrying exactly the record's mesh pattern and scope (a token
 * re-signed with a live jti but a wider mesh or scope is refused). A token whose row is missing
 * is refused: every session this server issued has a row until it expires.
 */
export async function isSessionLive(
  db: D1Database,
  presented: PresentedSession,
  cacheMs: number,
  now = Date.now(),
): Promise<boolean> {
  let entry = revocationCache.get(presented.jti);
  if (entry === undefined || now - entry.checkedAt >= cacheMs) {
    const row = await orUnavailable(STORE, () =>
      db
        .prepare("SELECT revoked_at, mesh_pattern, scope FROM sessions WHERE jti = ?")
        .bind(presented.jti)
        .first<{ revoked_at: number | null; mesh_pattern: string; scope: SessionScope }>(),
    );
    entry = {
      live: row !== null && row.revoked_at === null,
      meshPattern: row?.mesh_pattern ?? null,
      scope: row?.scope ?? null,
      checkedAt: now,
    };
    if (cacheMs > 0) remember(presented.jti, entry);
  }
  return entry.live && entry.meshPattern === presented.mesh && entry.scope === presented.scope;
}

/** Forgets cached verdicts, so this isolate sees a revocation at once. */
export function forgetCachedSessions(jtis: readonly string[]): void {
  for (const jti of jtis) revocationCache.delete(jti);
}

/**
 * Asks every hub these sessions hold sockets on to close them: the exact mesh of an exact
 * session, and for any pattern the meshes recorded at upgrade (socket-meshes.ts). Bounded: at
 * most MAX_FANOUT_MESHES hubs, 16 RPCs at a time; beyond that (logged) sockets close at expiry.
 * Best effort: the revocation is already durable in D1, and each hub also remembers it, so an
 * upgrade still in flight is refused.
 */
export async function closeSessionSockets(
  env: Env,
  sessions: readonly { jti: string; meshPattern: string }[],
  code: 4401 | 4403 = REVOKED_CLOSE_CODE,
): Promise<number> {
  const byMesh = new Map<string, Set<string>>();
  const add = (mesh: string, jti: string) => {
    const set = byMesh.get(mesh) ?? new Set<string>();
    set.add(jti);
    byMesh.set(mesh, set);
  };
  for (const session of sessions) {
    const mesh = exactMeshOf(session.meshPattern);
    if (mesh !== null) add(mesh, session.jti);
  }
  let recorded: { jti: string; mesh: string }[] = [];
  try {
    recorded = await meshesWithSockets(env.DB, sessions.map((s) => s.jti));
  } catch (err) {
    console.error(JSON.stringify({ level: "warn", msg: "reading socket meshes failed", error: String(err) }));
  }
  for (const row of recorded) add(row.mesh, row.jti);
  let meshes = [...byMesh.entries()];
  if (meshes.length > MAX_FANOUT_MESHES) {
    console.error(JSON.stringify({ level: "warn", msg: "revocation fan-out truncated", meshes: meshes.length }));
    meshes = meshes.slice(0, MAX_FANOUT_MESHES);
  }
  let closed = 0;
  for (let i = 0; i < meshes.length; i += 16) {
    const results = await Promise.allSettled(
      meshes.slice(i, i + 16).map(([mesh, jtis]) => hubOf(env, mesh).closeSessions([...jtis], code)),
    );
    for (const result of results) {
      if (result.status === "fulfilled") closed += result.value;
      else console.error(JSON.stringify({ level: "warn", msg: "closing revoked sockets failed", error: String(result.reason) }));
    }
  }
  return closed;
}

/**
 * Revokes one session (idempotent: a second revocation keeps the first time) and closes its
 * sockets. Null when no such session exists.
 */
export async function revokeSession(env: Env, jti: string, now = Date.now()): Promise<SessionRecord | null> {
  const row = await orUnavailable(STORE, () =>
    env.DB.prepare(`UPDATE sessions SET revoked_at = COALESCE(revoked_at, ?) WHERE jti = ? RETURNING ${COLUMNS}`)
      .bind(now, jti)
      .first<SessionRow>(),
  );
  if (row === null) return null;
  forgetCachedSessions([jti]);
  await closeSessionSockets(env, [{ jti: row.jti, meshPattern: row.mesh_pattern }]);
  return toRecord(row);
}

/**
 * The statement that revokes every live session of an API key, returning `jti, mesh_pattern`;
 * batched with the key's own revocation so the two happen together or not at all.
 */
export function revokeSessionsOfKeyStatement(db: D1Database, keyId: string, now: number): D1PreparedStatement {
  return db
    // Only when the key exists: sessions exchanged from identity tokens carry key_id "idp", which
    // no API key has, and revoking a key named "idp" must not revoke all of them.
    .prepare(
      `UPDATE sessions SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL
       AND EXISTS (SELECT 1 FROM api_keys WHERE id = ?) RETURNING jti, mesh_pattern`,
    )
    .bind(now, keyId, keyId);
}

/** Reads what revokeSessionsOfKeyStatement returned and drops those sessions from the cache. */
export function sessionsRevokedBy(result: D1Result | undefined): { jti: string; meshPattern: string }[] {
  const rows = (result?.results ?? []) as { jti: string; mesh_pattern: string }[];
  const revoked = rows.map((r) => ({ jti: r.jti, meshPattern: r.mesh_pattern }));
  forgetCachedSessions(revoked.map((r) => r.jti));
  return revoked;
}

const LIST_SCAN_LIMIT = 50_000;

export interface ListSessionsOptions {
  /** Only sessions that could reach a mesh this pattern names (exact id, "*", or prefix*). */
  meshPattern?: string;
  /** Include sessions that have expired but are not yet cleaned up. Default false. */
  includeExpired?: boolean;
  /** At most this many, newest first. Default 1000. */
  limit?: number;
  now?: number;
}

export async function listSessions(db: D1Database, options: ListSessionsOptions = {}): Promise<SessionRecord[]> {
  const { meshPattern } = options;
  if (meshPattern !== undefined && !isValidMeshPattern(meshPattern)) {
    throw new HttpError("bad_request", "meshPattern must be a mesh id, \"*\", or a prefix ending in \"*\".");
  }
  const limit = Math.max(1, Math.min(options.limit ?? 1000, 10_000));
  const now = options.now ?? Date.now();
  // Pattern overlap is filtered here, not in SQL, so the scan is capped.
  const { results } = await orUnavailable(STORE, () =>
    db
      .prepare(`SELECT ${COLUMNS} FROM sessions WHERE expires_at > ? ORDER BY issued_at DESC, jti LIMIT ?`)
      .bind(options.includeExpired ? 0 : now, LIST_SCAN_LIMIT)
      .all<SessionRow>(),
  );
  const matching = meshPattern === undefined ? results : results.filter((r) => meshPatternsOverlap(r.mesh_pattern, meshPattern));
  return matching.slice(0, limit).map(toRecord);
}

/**
 * Deletes sessions that expired before `now` (minus a minute, beyond any clock tolerance, so a
 * row is never gone while its token still verifies). Returns how many rows went.
 */
export async function deleteExpiredSessions(db: D1Database, now: number): Promise<number> {
  const result = await orUnavailable(STORE, () =>
    db.prepare("DELETE FROM sessions WHERE expires_at < ?").bind(now - 60_000).run(),
  );
  return result.meta.changes ?? 0;
}
