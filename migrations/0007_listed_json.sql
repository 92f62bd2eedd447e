-- Issue 12: each index row carries its list-files entry as JSON text, computed by SQLite when the
-- row is written (a STORED generated column), so a listing of 1,000 files joins 1,000 stored
-- strings instead of building 1,000 JSON objects per read (about 7 ms of D1 time for 1,000 rows
-- locally). Generated, not written by the Worker: no write path can leave it disagreeing with the
-- row. modifiedTime is ISO 8601 in UTC with milliseconds, as Date.toISOString writes it; a deleted
-- change file (listed through its window) shows its deletion time.
--
-- SQLite cannot add a STORED column to a table, so the table is rebuilt: same columns, same key,
-- same indexes, same fence triggers (0005). Applied to DB and to every index shard.
CREATE TABLE objects_v7 (
  mesh        TEXT    NOT NULL,
  path        TEXT    NOT NULL,
  parent      TEXT    NOT NULL,
  name        TEXT    NOT NULL,
  size        INTEGER NOT NULL,
  etag        TEXT    NOT NULL,
  modified_at INTEGER NOT NULL,
  class       TEXT    NOT NULL,
  location    TEXT    NOT NULL,
  version     INTEGER NOT NULL DEFAULT 0,
  deleted_at  INTEGER,
  listed_json TEXT GENERATED ALWAYS AS (json_object(
    'name', name, 'path', path, 'size', size,
    'modifiedTime', strftime('%Y-%m-%dT%H:%M:%S', coalesce(deleted_at, modified_at) / 1000, 'unixepoch')
                    || printf('.%03dZ', coalesce(deleted_at, modified_at) % 1000),
    'etag', etag)) STORED,
  PRIMARY KEY (mesh, path)
) WITHOUT ROWID;

INSERT INTO objects_v7 (mesh, path, parent, name, size, etag, modified_at, class, location, version, deleted_at)
  SELECT mesh, path, parent, name, size, etag, modified_at, class, location, version, deleted_at FROM objects;

-- Dropping the old table drops its indexes and triggers with it.
DROP TABLE objects;
ALTER TABLE objects_v7 RENAME TO objects;

CREATE INDEX objects_by_parent ON objects (mesh, parent, name);
CREATE INDEX objects_tombstones ON objects (deleted_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX objects_legacy_hub ON objects (mesh, path) WHERE location = 'hub';

CREATE TRIGGER objects_fence_insert BEFORE INSERT ON objects
  BEGIN SELECT RAISE(ABORT, 'meshbox_mesh_moved') WHERE EXISTS (SELECT 1 FROM moved_meshes WHERE mesh = NEW.mesh); END;
CREATE TRIGGER objects_fence_update BEFORE UPDATE ON objects
  BEGIN SELECT RAISE(ABORT, 'meshbox_mesh_moved') WHERE EXISTS (SELECT 1 FROM moved_meshes WHERE mesh = NEW.mesh); END;
CREATE TRIGGER objects_fence_delete BEFORE DELETE ON objects
  BEGIN SELECT RAISE(ABORT, 'meshbox_mesh_moved') WHERE EXISTS (SELECT 1 FROM moved_meshes WHERE mesh = OLD.mesh); END;
