// Which meshes a session holds push sockets on (D1 `session_socket_meshes`), so revoking a "*"
// or prefix session reaches every hub it is connected to. Written on upgrade only (never on IO),
// at most once per (session, mesh) per isolate.
import { HttpError } from "../lib/errors";
import { orUnavailable } from "../lib/unavailable";

const STORE = "Session storage";

/** At most this many hubs are asked to close one revocation's sockets (see closeSessionSockets). */
export const MAX_FANOUT_MESHES = 1_000;

const recorded = new Set<string>();
const RECORDED_MAX = 10_000;

/**
 * Records that `jti` is opening a socket on `mesh` and re-reads, uncached, that the session is
 * still live, in one batch. Both orders of a concurrent revocation are then covered: a
 * revocation that committed first refuses this upgrade; one that commits later sees the row and
 * fans out to this mesh's hub (which remembers revoked sessions for an accept still in flight).
 */
export async function admitSessionSocket(db: D1Database, jti: string, mesh: string, now = Date.now()): Promise<void> {
  const memo = `${jti}\n${mesh}`;
  const statements = [db.prepare("SELECT revoked_at FROM sessions WHERE jti = ?").bind(jti)];
  if (!recorded.has(memo)) {
    statements.unshift(
      db.prepare("INSERT OR IGNORE INTO session_socket_meshes (jti, mesh, first_at) VALUES (?, ?, ?)").bind(jti, mesh, now),
    );
  }
  const results = await orUnavailable(STORE, () => db.batch(statements));
  const row = (results[results.length - 1]?.results[0] as { revoked_at: number | null } | undefined) ?? null;
  if (row === null || row.revoked_at !== null) {
    throw new HttpError("unauthorized", "The session has been revoked.", { headers: { "WWW-Authenticate": "Bearer" } });
  }
  if (recorded.size >= RECORDED_MAX) recorded.clear();
  recorded.add(memo);
}

/** The meshes these sessions hold sockets on, at most `limit` (sessions queried in chunks). */
export async function meshesWithSockets(
  db: D1Database,
  jtis: readonly string[],
  limit = MAX_FANOUT_MESHES,
): Promise<{ jti: string; mesh: string }[]> {
  const found: { jti: string; mesh: string }[] = [];
  const CHUNK = 90; // D1 binds at most 100 parameters per statement.
  for (let i = 0; i < jtis.length && found.length < limit; i += CHUNK) {
    const chunk = jtis.slice(i, i + CHUNK);
    const { results } = await orUnavailable(STORE, () =>
      db
        .prepare(
          `SELECT jti, mesh FROM session_socket_meshes WHERE jti IN (${chunk.map(() => "?").join(", ")}) LIMIT ?`,
        )
        .bind(...chunk, limit - found.length)
        .all<{ jti: string; mesh: string }>(),
    );
    found.push(...results);
  }
  return found;
}

/** Drops the rows of sessions that no longer exist (maintenance, after expired sessions go). */
export async function deleteOrphanedSocketMeshes(db: D1Database): Promise<number> {
  const result = await orUnavailable(STORE, () =>
    db.prepare("DELETE FROM session_socket_meshes WHERE jti NOT IN (SELECT jti FROM sessions)").run(),
  );
  return result.meta.changes ?? 0;
}
