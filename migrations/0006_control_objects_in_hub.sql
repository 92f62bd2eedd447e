-- Issue 12: control objects (manifest, generations, head.json, device records) are no longer
-- indexed in D1; listings take them from the mesh's hub. Rows left from before carry
-- location = 'hub': every query skips them and the maintenance cron drops them in bounded batches
-- through this partial index (empty, and free, once they are gone).
CREATE INDEX objects_legacy_hub ON objects (mesh, path) WHERE location = 'hub';

-- The hub counts its mesh's writes per hour in its own storage and copies the absolute counts
-- here from its alarm (at most once a minute), so a flush pays no D1 statement for the chart.
-- writes/bytes keep the increments written by D1 batches (stored files, and rows from before).
ALTER TABLE mesh_hourly ADD COLUMN hub_writes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mesh_hourly ADD COLUMN hub_bytes INTEGER NOT NULL DEFAULT 0;

-- The bytes of the mesh's control objects, as its hub last copied them (tenant usage totals).
ALTER TABLE mesh_usage ADD COLUMN control_bytes INTEGER NOT NULL DEFAULT 0;
