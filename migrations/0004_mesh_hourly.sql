-- Issue 13 §4 (dashboard): writes and bytes written per mesh per hour, for the admin chart of the
-- last 24 hours. Filled in the same D1 batch as the index write (worker/objects/usage.ts), pruned
-- past 48 hours by the maintenance cron, deleted with the mesh by an admin wipe.
CREATE TABLE mesh_hourly (
  mesh   TEXT    NOT NULL,
  -- Hours since the epoch (epoch ms / 3 600 000, floored).
  hour   INTEGER NOT NULL,
  writes INTEGER NOT NULL DEFAULT 0,
  bytes  INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (mesh, hour)
) WITHOUT ROWID;
CREATE INDEX mesh_hourly_by_hour ON mesh_hourly (hour);
