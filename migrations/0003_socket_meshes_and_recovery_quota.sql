-- Issue 11 (revocation and limits).

-- Which meshes a session holds (or held) push sockets on, so a revocation of a "*" or prefix
-- session can reach every hub it is connected to. Written once per (session, mesh) on upgrade;
-- rows go with their session when it expires (maintenance).
CREATE TABLE session_socket_meshes (
  jti        TEXT    NOT NULL,
  mesh       TEXT    NOT NULL,
  first_at   INTEGER NOT NULL,
  PRIMARY KEY (jti, mesh)
) WITHOUT ROWID;

-- Recovery wrappers (bodies in R2 under r/<locator>), for the tenant-wide quota and expiry.
CREATE TABLE recovery_wrappers (
  locator    TEXT    PRIMARY KEY,
  size       INTEGER NOT NULL,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX recovery_wrappers_by_age ON recovery_wrappers (created_at);
