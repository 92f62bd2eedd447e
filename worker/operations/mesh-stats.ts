// What the D1 side knows about one mesh, for the admin stats route: the live index (every object,
// control objects included) and the usage row (stored files, last write/read, eviction).
import { parseRoots } from "../objects/eviction";

export interface MeshStorageStats {
  /** Live index rows (R2 bodies and hub control objects). */
  objects: number;
  bytes: number;
  /** Tombstoned rows still kept (deleted change files in their grace, delete markers). */
  tombstones: number;
  storedFiles: number;
  storedBytes: number;
  /** Epoch ms, or null when never recorded. */
  lastWriteAt: number | null;
  lastReadAt: number | null;
  evictedAt: number | null;
  evictedRoots: string[];
}

interface IndexTotals {
  objects: number;
  bytes: number | null;
  tombstones: number;
}

interface UsageRow {
  stored_bytes: number;
  stored_count: number;
  last_write_at: number | null;
  last_read_at: number | null;
  evicted_at: number | null;
  evicted_roots: string | null;
}


export async function readMeshStats(db: D1Database, meshId: string): Promise<MeshStorageStats> {
  const [totals, usage] = await db.batch<IndexTotals | UsageRow>([
    db
      .prepare(
        `SELECT count(*) FILTER (WHERE deleted_at IS NULL) AS objects,
                sum(size) FILTER (WHERE deleted_at IS NULL) AS bytes,
                count(*) FILTER (WHERE deleted_at IS NOT NULL) AS tombstones
         FROM objects WHERE mesh = ?1 AND location <> 'hub'`,
      )
      .bind(meshId),
    db
      .prepare(
        `SELECT stored_bytes, stored_count, last_write_at, last_read_at, evicted_at, evicted_roots
         FROM mesh_usage WHERE mesh = ?1`,
      )
      .bind(meshId),
  ]);
  const t = (totals?.results[0] as IndexTotals | undefined) ?? { objects: 0, bytes: 0, tombstones: 0 };
  const u = usage?.results[0] as UsageRow | undefined;
  return {
    objects: t.objects,
    bytes: t.bytes ?? 0,
    tombstones: t.tombstones,
    storedFiles: u?.stored_count ?? 0,
    storedBytes: u?.stored_bytes ?? 0,
    lastWriteAt: u?.last_write_at ?? null,
    lastReadAt: u?.last_read_at ?? null,
    evictedAt: u?.evicted_at ?? null,
    evictedRoots: parseRoots(u?.evicted_roots ?? null),
  };
}
