-- Issue 14: the object index sharded by mesh over N D1 databases (README "Index shards").
-- This file is applied to DB and to every index shard (INDEX_DB_0 .. INDEX_DB_<N-1>): the
-- directory is only used in DB, the fence only in the shards; an unused table costs nothing.

-- Which shard holds a mesh's per-mesh rows (objects, indexed_folders, stored_files, mesh_usage,
-- mesh_hourly). Written on the mesh's first write, switched by a move (epoch + 1 each time).
CREATE TABLE index_directory (
  mesh      TEXT    PRIMARY KEY,
  shard     INTEGER NOT NULL,
  epoch     INTEGER NOT NULL,
  moving_to INTEGER,                     -- set while a move copies the mesh to that shard
  placed_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX index_directory_by_shard ON index_directory (shard);

-- The fence: a mesh with a row here has moved (or is being moved) away from this shard. The
-- triggers below refuse every write of its rows, inside the database that runs the write, so the
-- refusal is ordered against every other statement of that database (D1 runs them one at a time)
-- and a refused batch rolls back whole. Deletes are fenced too: the move's own cleanup lifts the
-- fence inside the same batch that deletes (worker/operations/shard-move.ts).
CREATE TABLE moved_meshes (
  mesh     TEXT    PRIMARY KEY,
  to_shard INTEGER NOT NULL,
  at       INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER objects_fence_insert BEFORE INSERT ON objects
  BEGIN SELECT RAISE(ABORT, 'meshbox_mesh_moved') WHERE EXISTS (SELECT 1 FROM moved_meshes WHERE mesh = NEW.mesh); END;
CREATE TRIGGER objects_fence_update BEFORE UPDATE ON objects
  BEGIN SELECT RAISE(ABORT, 'meshbox_mesh_moved') WHERE EXISTS (SELECT 1 FROM moved_meshes WHERE mesh = NEW.mesh); END;
CREATE TRIGGER objects_fence_delete BEFORE DELETE ON objects
  BEGIN SELECT RAISE(ABORT, 'meshbox_mesh_moved') WHERE EXISTS (SELECT 1 FROM moved_meshes WHERE mesh = OLD.mesh); END;

CREATE TRIGGER indexed_folders_fence_insert BEFORE INSERT ON indexed_folders
  BEGIN SELECT RAISE(ABORT, 'meshbox_mesh_moved') WHERE EXISTS (SELECT 1 FROM moved_meshes WHERE mesh = NEW.mesh); END;
CREATE TRIGGER indexed_folders_fence_update BEFORE UPDATE ON indexed_folders
  BEGIN SELECT RAISE(ABORT, 'meshbox_mesh_moved') WHERE EXISTS (SELECT 1 FROM moved_meshes WHERE mesh = NEW.mesh); END;
CREATE TRIGGER indexed_folders_fence_delete BEFORE DELETE ON indexed_folders
  BEGIN SELECT RAISE(ABORT, 'meshbox_mesh_moved') WHERE EXISTS (SELECT 1 FROM moved_meshes WHERE mesh = OLD.mesh); END;

CREATE TRIGGER stored_files_fence_insert BEFORE INSERT ON stored_files
  BEGIN SELECT RAISE(ABORT, 'meshbox_mesh_moved') WHERE EXISTS (SELECT 1 FROM moved_meshes WHERE mesh = NEW.mesh); END;
CREATE TRIGGER stored_files_fence_update BEFORE UPDATE ON stored_files
  BEGIN SELECT RAISE(ABORT, 'meshbox_mesh_moved') WHERE EXISTS (SELECT 1 FROM moved_meshes WHERE mesh = NEW.mesh); END;
CREATE TRIGGER stored_files_fence_delete BEFORE DELETE ON stored_files
  BEGIN SELECT RAISE(ABORT, 'meshbox_mesh_moved') WHERE EXISTS (SELECT 1 FROM moved_meshes WHERE mesh = OLD.mesh); END;

CREATE TRIGGER mesh_usage_fence_insert BEFORE INSERT ON mesh_usage
  BEGIN SELECT RAISE(ABORT, 'meshbox_mesh_moved') WHERE EXISTS (SELECT 1 FROM moved_meshes WHERE mesh = NEW.mesh); END;
CREATE TRIGGER mesh_usage_fence_update BEFORE UPDATE ON mesh_usage
  BEGIN SELECT RAISE(ABORT, 'meshbox_mesh_moved') WHERE EXISTS (SELECT 1 FROM moved_meshes WHERE mesh = NEW.mesh); END;
CREATE TRIGGER mesh_usage_fence_delete BEFORE DELETE ON mesh_usage
  BEGIN SELECT RAISE(ABORT, 'meshbox_mesh_moved') WHERE EXISTS (SELECT 1 FROM moved_meshes WHERE mesh = OLD.mesh); END;

CREATE TRIGGER mesh_hourly_fence_insert BEFORE INSERT ON mesh_hourly
  BEGIN SELECT RAISE(ABORT, 'meshbox_mesh_moved') WHERE EXISTS (SELECT 1 FROM moved_meshes WHERE mesh = NEW.mesh); END;
CREATE TRIGGER mesh_hourly_fence_update BEFORE UPDATE ON mesh_hourly
  BEGIN SELECT RAISE(ABORT, 'meshbox_mesh_moved') WHERE EXISTS (SELECT 1 FROM moved_meshes WHERE mesh = NEW.mesh); END;
CREATE TRIGGER mesh_hourly_fence_delete BEFORE DELETE ON mesh_hourly
  BEGIN SELECT RAISE(ABORT, 'meshbox_mesh_moved') WHERE EXISTS (SELECT 1 FROM moved_meshes WHERE mesh = OLD.mesh); END;
