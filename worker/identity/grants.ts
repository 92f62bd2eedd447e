// Mesh grants for identity-provider subjects (D1 `grants`): subject `sub` -> mesh pattern ->
// access. Managed by the admin API; read on the IO path through a small per-isolate cache, so a
// signed-in user costs at most one D1 read per REVOCATION_CACHE_MS per isolate.
import { badRequest } from "../lib/errors";
import { isValidMeshPattern } from "../lib/mesh-id";
import { randomHex } from "../lib/secrets";
import { orUnavailable } from "../lib/unavailable";

const STORE = "Grant storage";

export type GrantAccess = "full" | "readonly";

export interface GrantRecord {
  id: string;
  subject: string;
  /** Exact mesh id, "*", or a prefix ending in "*". */
  meshPattern: string;
  access: GrantAccess;
  /** ISO-8601. */
  createdAt: string;
}

interface GrantRow {
  id: string;
  subject: string;
  mesh_pattern: string;
  access: GrantAccess;
  created_at: number;
}

const COLUMNS = "id, subject, mesh_pattern, access, created_at";
/** Subjects are provider ids such as `auth0|64f…` or `user_2abc…`; long enough for any of them. */
export const MAX_SUBJECT_LENGTH = 255;
const LIST_LIMIT = 10_000;
/** A subject with more rows than this is a data mistake; only this many are read on the IO path. */
const PER_SUBJECT_LIMIT = 200;

function toRecord(row: GrantRow): GrantRecord {
  return {
    id: row.id,
    subject: row.subject,
    meshPattern: row.mesh_pattern,
    access: row.access,
    createdAt: new Date(row.created_at).toISOString(),
  };
}

export function isValidSubject(value: unknown): value is string {
  return typeof value === "string" && value !== "" && value.length <= MAX_SUBJECT_LENGTH && value.trim() === value;
}

/** Records a grant; bad input is the caller's mistake (400). */
export async function createGrant(
  db: D1Database,
  input: { subject?: unknown; meshPattern?: unknown; access?: unknown },
  now = Date.now(),
): Promise<GrantRecord> {
  const { subject, meshPattern } = input;
  const access = input.access ?? "full";
  if (!isValidSubject(subject)) {
    throw badRequest(`subject must be a non-empty string of at most ${MAX_SUBJECT_LENGTH} characters without surrounding spaces.`);
  }
  if (!isValidMeshPattern(meshPattern)) throw badRequest('meshPattern must be a mesh id, "*", or a prefix ending in "*".');
  if (access !== "full" && access !== "readonly") throw badRequest('access must be "full" or "readonly".');
  const id = `grt_${randomHex(8)}`;
  await orUnavailable(STORE, () =>
    db
      .prepare(`INSERT INTO grants (${COLUMNS}) VALUES (?, ?, ?, ?, ?)`)
      .bind(id, subject, meshPattern, access, now)
      .run(),
  );
  forgetCachedGrants(subject);
  return { id, subject, meshPattern, access, createdAt: new Date(now).toISOString() };
}

export async function listGrants(db: D1Database, subject?: string): Promise<GrantRecord[]> {
  const { results } = await orUnavailable(STORE, () =>
    subject === undefined
      ? db.prepare(`SELECT ${COLUMNS} FROM grants ORDER BY created_at, id LIMIT ?`).bind(LIST_LIMIT).all<GrantRow>()
      : db
          .prepare(`SELECT ${COLUMNS} FROM grants WHERE subject = ? ORDER BY created_at, id LIMIT ?`)
          .bind(subject, LIST_LIMIT)
          .all<GrantRow>(),
  );
  return results.map(toRecord);
}

/** Deletes a grant; returns what it was, or null when no such grant exists. */
export async function revokeGrant(db: D1Database, id: string): Promise<GrantRecord | null> {
  const row = await orUnavailable(STORE, () =>
    db.prepare(`DELETE FROM grants WHERE id = ? RETURNING ${COLUMNS}`).bind(id).first<GrantRow>(),
  );
  if (row === null) return null;
  forgetCachedGrants(row.subject);
  return toRecord(row);
}

export interface SubjectGrant {
  meshPattern: string;
  access: GrantAccess;
}

// Per-isolate cache: subject -> (grants, read at). A new or revoked grant takes effect at once
// on the isolate that changed it, within REVOCATION_CACHE_MS elsewhere (the same bound as
// session revocation). Bounded like the revocation cache.
const grantCache = new Map<string, { grants: SubjectGrant[]; readAt: number }>();
const GRANT_CACHE_MAX_ENTRIES = 10_000;

function remember(subject: string, grants: SubjectGrant[], now: number): void {
  if (grantCache.size >= GRANT_CACHE_MAX_ENTRIES) {
    let drop = Math.ceil(GRANT_CACHE_MAX_ENTRIES / 10);
    for (const key of grantCache.keys()) {
      if (drop-- <= 0) break;
      grantCache.delete(key);
    }
  }
  grantCache.delete(subject);
  grantCache.set(subject, { grants, readAt: now });
}

export function forgetCachedGrants(subject: string): void {
  grantCache.delete(subject);
}

/** The grants of one subject, through the per-isolate cache. */
export async function grantsOfSubject(
  db: D1Database,
  subject: string,
  cacheMs: number,
  now = Date.now(),
): Promise<SubjectGrant[]> {
  const cached = grantCache.get(subject);
  if (cached !== undefined && now - cached.readAt < cacheMs) return cached.grants;
  const { results } = await orUnavailable(STORE, () =>
    db
      .prepare("SELECT mesh_pattern, access FROM grants WHERE subject = ? LIMIT ?")
      .bind(subject, PER_SUBJECT_LIMIT)
      .all<{ mesh_pattern: string; access: GrantAccess }>(),
  );
  const grants = results.map((r) => ({ meshPattern: r.mesh_pattern, access: r.access }));
  if (cacheMs > 0) remember(subject, grants, now);
  return grants;
}
