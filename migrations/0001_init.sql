-- meshbox D1 schema. D1 holds auth state and the read-through index of R2 (and hub) objects;
-- every row here can be rebuilt from R2 custom metadata and the mesh hubs except auth state.

-- Read-through index: answers list-files, list-folders and metadata without listing R2.
-- Deleted objects stay as tombstones (deleted_at) so a concurrent read-through fill can never
-- resurrect them, and so a deleted change file stays readable by exact GET for its grace period.
CREATE TABLE objects (
  mesh        TEXT    NOT NULL,
  path        TEXT    NOT NULL,          -- normalized, leading '/', e.g. /MyApp/changes/x.json
  parent      TEXT    NOT NULL,          -- folder path, '/' for top-level names
  name        TEXT    NOT NULL,
  size        INTEGER NOT NULL,
  etag        TEXT    NOT NULL,          -- quoted opaque string, as served
  modified_at INTEGER NOT NULL,          -- epoch ms
  class       TEXT    NOT NULL,          -- change | head | manifest | generation | snapshot | device | other
  location    TEXT    NOT NULL,          -- 'r2' or 'hub'
  version     INTEGER NOT NULL DEFAULT 0,-- hub write version; guards against reordered index writes
  deleted_at  INTEGER,                   -- tombstone time, NULL while live
  PRIMARY KEY (mesh, path)
) WITHOUT ROWID;
CREATE INDEX objects_by_parent ON objects (mesh, parent, name);
CREATE INDEX objects_tombstones ON objects (deleted_at) WHERE deleted_at IS NOT NULL;

-- Folders whose whole subtree the index holds (filled once from R2 + hub, then kept exact).
CREATE TABLE indexed_folders (
  mesh       TEXT    NOT NULL,
  folder     TEXT    NOT NULL,
  indexed_at INTEGER NOT NULL,
  PRIMARY KEY (mesh, folder)
) WITHOUT ROWID;

-- Durable stored files (PROTOCOL.md section 4); bodies in R2 under f/<mesh>/<path>.
CREATE TABLE stored_files (
  mesh              TEXT    NOT NULL,
  path              TEXT    NOT NULL,
  name              TEXT    NOT NULL,
  size              INTEGER NOT NULL,
  etag              TEXT    NOT NULL,
  content_type      TEXT    NOT NULL,
  uploaded_by       TEXT    NOT NULL,
  uploaded_at       INTEGER NOT NULL,
  modified_at       INTEGER NOT NULL,
  last_accessed_at  INTEGER,
  use_count         INTEGER NOT NULL DEFAULT 0,
  plaintext_size    INTEGER,
  taint             TEXT,
  seal_hash         TEXT,                -- SHA-256 of the seal guard; the guard itself is never stored
  PRIMARY KEY (mesh, path)
) WITHOUT ROWID;

-- Per-mesh usage for quotas, stats and idle cleanup.
CREATE TABLE mesh_usage (
  mesh          TEXT    PRIMARY KEY,
  stored_bytes  INTEGER NOT NULL DEFAULT 0,
  stored_count  INTEGER NOT NULL DEFAULT 0,
  last_write_at INTEGER,
  last_read_at  INTEGER,
  evicted_at    INTEGER,                 -- set by idle-mesh cleanup
  evicted_roots TEXT                     -- JSON array of roots that existed when evicted
) WITHOUT ROWID;

-- API keys: only a SHA-256 hash of each key is stored; the key is shown once at creation.
CREATE TABLE api_keys (
  id           TEXT    PRIMARY KEY,
  name         TEXT    NOT NULL,
  key_hash     TEXT    NOT NULL UNIQUE,
  mesh_pattern TEXT    NOT NULL,         -- exact mesh id, '*', or a prefix ending in '*'
  access       TEXT    NOT NULL CHECK (access IN ('full', 'readonly')),
  created_at   INTEGER NOT NULL,
  last_used_at INTEGER,
  revoked_at   INTEGER
) WITHOUT ROWID;

-- One row per issued session JWT.
CREATE TABLE sessions (
  jti          TEXT    PRIMARY KEY,
  key_id       TEXT    NOT NULL,
  subject      TEXT    NOT NULL,
  mesh_pattern TEXT    NOT NULL,
  scope        TEXT    NOT NULL CHECK (scope IN ('full', 'readonly')),
  issued_at    INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,
  revoked_at   INTEGER
) WITHOUT ROWID;
CREATE INDEX sessions_by_key ON sessions (key_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- Fixed-window counters for rate limits (auth endpoints), shared by every isolate.
CREATE TABLE rate_limits (
  bucket       TEXT    PRIMARY KEY,
  window_start INTEGER NOT NULL,
  count        INTEGER NOT NULL
) WITHOUT ROWID;
