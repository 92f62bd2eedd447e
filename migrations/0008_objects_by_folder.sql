-- Issue 12: rows are clustered by folder, so a listing reads one contiguous run of them.
--
-- The primary key becomes (mesh, parent, name): a folder's rows sit together in name order, and
-- list-files reads them with neither a sort nor a lookup per row. Keyed by (mesh, path) before,
-- SQLite answered `mesh = ? AND parent = ?` by walking every row of the mesh, so a listing cost
-- what the whole mesh held (bench/index-capacity.mjs, list-files of 1,000: 13.1 ms of D1 time
-- before, 2.6 ms after); forced through objects_by_parent it paid a primary-key lookup per row
-- instead. (mesh, path) stays unique (objects_by_path): reads by path, path ranges and every
-- ON CONFLICT (mesh, path) use it. parent and name are always derived from path, so the two
-- keys name the same rows.
--
-- SQLite cannot change a table's key, so the table is rebuilt: same columns (0007's stored
-- listed_json included), same other indexes, same fence triggers (0005). The copy takes every
-- row: run it before deploying the Worker that expects it (README, Upgrading). The statements of
-- the Worker before it still run against this table unchanged. Applied to DB and every index shard.
CREATE TABLE objects_v8 (
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
  PRIMARY KEY (mesh, parent, name)
) WITHOUT ROWID;

INSERT INTO objects_v8 (mesh, path, parent, name, size, etag, modified_at, class, location, version, deleted_at)
  SELECT mesh, path, parent, name, size, etag, modified_at, class, location, version, deleted_at FROM objects;

-- Dropping the old table drops its indexes and triggers with it.
DROP TABLE objects;
ALTER TABLE objects_v8 RENAME TO objects;

CREATE UNIQUE INDEX objects_by_path ON objects (mesh, path);
CREATE INDEX objects_tombstones ON objects (deleted_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX objects_legacy_hub ON objects (mesh, path) WHERE location = 'hub';

CREATE TRIGGER objects_fence_insert BEFORE INSERT ON objects
  BEGIN SELECT RAISE(ABORT, 'meshbox_mesh_moved') WHERE EXISTS (SELECT 1 FROM moved_meshes WHERE mesh = NEW.mesh); END;
CREATE TRIGGER objects_fence_update BEFORE UPDATE ON objects
  BEGIN SELECT RAISE(ABORT, 'meshbox_mesh_moved') WHERE EXISTS (SELECT 1 FROM moved_meshes WHERE mesh = NEW.mesh); END;
CREATE TRIGGER objects_fence_delete BEFORE DELETE ON objects
  BEGIN SELECT RAISE(ABORT, 'meshbox_mesh_moved') WHERE EXISTS (SELECT 1 FROM moved_meshes WHERE mesh = OLD.mesh); END;
