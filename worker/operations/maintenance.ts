// D1 queries of the scheduled maintenance: which meshes are idle, recording an eviction, and
// which meshes the reconcile samples this run. Every query is bounded by a LIMIT.
import { NOT_MOVED } from "../shards/shard-bindings";

export interface IdleMesh {
  mesh: string;
  lastWriteAt: number;
}

/**
 * Meshes whose last write is older than `cutoff` and that were not evicted since that write
 * (a mesh written again after an eviction can become idle, and be evicted, again).
 */
export async function findIdleMeshes(db: D1Database, cutoff: number, limit: number): Promise<IdleMesh[]> {
  const { results } = await db
    .prepare(
      `SELECT mesh, last_write_at FROM mesh_usage
       WHERE last_write_at IS NOT NULL AND last_write_at < ?1
         AND (evicted_at IS NULL OR evicted_at < last_write_at) AND ${NOT_MOVED}
       ORDER BY last_write_at LIMIT ?2`,
    )
    .bind(cutoff, limit)
    .all<{ mesh: string; last_write_at: number }>();
  return results.map((r) => ({ mesh: r.mesh, lastWriteAt: r.last_write_at }));
}

/**
 * Records an eviction, unless the mesh was written after `lastWriteAt` (it lives again; the
 * record would be wrong). Stored-file usage is zeroed: the files are gone.
 */
export async function markEvicted(
  db: D1Database,
  meshId: string,
  lastWriteAt: number,
  at: number,
  roots: readonly string[],
): Promise<boolean> {
  const result = await db
    .prepare(
      `UPDATE mesh_usage SET evicted_at = ?2, evicted_roots = ?3, stored_bytes = 0, stored_count = 0
       WHERE mesh = ?1 AND last_write_at = ?4`,
    )
    .bind(meshId, at, JSON.stringify(roots), lastWriteAt)
    .run();
  return (result.meta.changes ?? 0) > 0;
}

/** A random handful of live meshes, so every mesh is reconciled now and then without a cursor. */
export async function sampleMeshes(db: D1Database, count: number): Promise<string[]> {
  const { results } = await db
    .prepare(
      `SELECT mesh FROM mesh_usage
       WHERE (evicted_at IS NULL OR evicted_at < coalesce(last_write_at, 0)) AND ${NOT_MOVED}
       ORDER BY random() LIMIT ?1`,
    )
    .bind(count)
    .all<{ mesh: string }>();
  return results.map((r) => r.mesh);
}
