// The hub's SQLite schema and its small counters. Created lazily (IF NOT EXISTS) so a fresh,
// evicted or wiped hub needs no migration step.

const SCHEMA = [
  // Per-mesh counters and timestamps (version, seq, push window state, mesh id).
  `CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID`,
  // Control objects, bodies verbatim. `state` and `lease_until` only matter for generations.
  `CREATE TABLE IF NOT EXISTS control (
     path        TEXT PRIMARY KEY,
     cls         TEXT NOT NULL,
     body        BLOB NOT NULL,
     size        INTEGER NOT NULL,
     sha256      TEXT NOT NULL,
     modified_at INTEGER NOT NULL,
     version     INTEGER NOT NULL,
     state       TEXT,
     lease_until INTEGER
   ) WITHOUT ROWID`,
  // One row per root (folder holding a manifest.json): what its pointer committed.
  `CREATE TABLE IF NOT EXISTS roots (
     root          TEXT PRIMARY KEY,
     generation    INTEGER NOT NULL,
     snapshot_path TEXT
   ) WITHOUT ROWID`,
  // Snapshot bodies live in R2; the hub tracks who may write them and what they hash to.
  // sha256 is NULL while the lease owner is still streaming.
  `CREATE TABLE IF NOT EXISTS snapshots (
     path        TEXT PRIMARY KEY,
     state       TEXT NOT NULL,
     token       TEXT,
     lease_until INTEGER NOT NULL,
     sha256      TEXT,
     size        INTEGER,
     etag        TEXT,
     modified_at INTEGER
   ) WITHOUT ROWID`,
  // Invalidations waiting for the coalescing window; survive eviction.
  `CREATE TABLE IF NOT EXISTS pending (
     id        INTEGER PRIMARY KEY AUTOINCREMENT,
     op        TEXT NOT NULL,
     path      TEXT NOT NULL,
     path_type TEXT NOT NULL,
     at        INTEGER NOT NULL
   )`,
  // Sessions revoked while this hub held (or was about to accept) their sockets, kept until the
  // session would have expired anyway, so an upgrade racing the revocation is refused.
  `CREATE TABLE IF NOT EXISTS revoked_sessions (
     jti   TEXT PRIMARY KEY,
     until INTEGER NOT NULL
   ) WITHOUT ROWID`,
  // Writes per hour, copied to D1 from the alarm (activity.ts); `rev` marks what changed since.
  `CREATE TABLE IF NOT EXISTS activity (
     hour   INTEGER PRIMARY KEY,
     writes INTEGER NOT NULL,
     bytes  INTEGER NOT NULL,
     rev    INTEGER NOT NULL
   )`,
];

export function createSchema(sql: SqlStorage): void {
  for (const statement of SCHEMA) sql.exec(statement);
}

export function readMeta(sql: SqlStorage, key: string): SqlStorageValue {
  const rows = sql.exec<{ value: SqlStorageValue }>(`SELECT value FROM meta WHERE key = ?`, key).toArray();
  return rows[0]?.value ?? null;
}

export function readCounter(sql: SqlStorage, key: string): number {
  const value = readMeta(sql, key);
  return typeof value === "number" ? value : 0;
}

export function writeMeta(sql: SqlStorage, key: string, value: SqlStorageValue): void {
  sql.exec(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value);
}

/** Bumps and returns a per-mesh counter. */
export function nextCounter(sql: SqlStorage, key: string): number {
  const next = readCounter(sql, key) + 1;
  writeMeta(sql, key, next);
  return next;
}
