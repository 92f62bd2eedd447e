// The shard directory (index_directory in DB): which shard holds each mesh's per-mesh rows. A mesh
// is placed on its first write; until then it has no row and reads go to unplacedShard (whose
// answer for it is empty). Placed entries are cached per isolate: a stale entry is safe because
// the old shard's fence redirects (mesh-index-db.ts), so the cache needs no expiry, only a bound.
import { allShards, hashShard, legacyShard, shardCount, shardDb, type ShardEnv } from "./shard-bindings";

export interface Placement {
  mesh: string;
  shard: number;
  epoch: number;
  /** Set while a move copies the mesh to that shard. */
  movingTo: number | null;
  placedAt: number;
}

interface RawPlacement {
  mesh: string;
  shard: number;
  epoch: number;
  moving_to: number | null;
  placed_at: number;
}

function fromRaw(row: RawPlacement): Placement {
  return { mesh: row.mesh, shard: row.shard, epoch: row.epoch, movingTo: row.moving_to, placedAt: row.placed_at };
}

/** Per-isolate maps are bounded by count (issue 12, memory): cleared when full, like usage.ts. */
const MAX_CACHED_PLACEMENTS = 10_000;
const placements = new Map<string, number>();

export function cachedShard(meshId: string): number | undefined {
  return placements.get(meshId);
}

/** Records a placement in this isolate's cache (tests use it to play a stale isolate). */
export function notePlacement(meshId: string, shard: number): void {
  remember(meshId, shard);
}

function remember(meshId: string, shard: number): void {
  if (placements.size >= MAX_CACHED_PLACEMENTS && !placements.has(meshId)) placements.clear();
  placements.set(meshId, shard);
}

/** Drops the cached entry (the shard's fence said the mesh moved). */
export function forgetPlacement(meshId: string): void {
  placements.delete(meshId);
}

/** Test and admin hook: the next lookup of every mesh reads the directory. */
export function clearPlacementCache(): void {
  placements.clear();
  loadCache = null;
}

/** The directory row, read from DB (never the cache). */
export async function readPlacement(env: ShardEnv, meshId: string): Promise<Placement | null> {
  const row = await env.DB.prepare(`SELECT mesh, shard, epoch, moving_to, placed_at FROM index_directory WHERE mesh = ?1`)
    .bind(meshId)
    .first<RawPlacement>();
  if (row === null) return null;
  remember(meshId, row.shard);
  return fromRaw(row);
}

/** The mesh's shard for a read: cached, else the directory, else (unplaced, not cached) unplacedShard. */
export async function shardForRead(env: ShardEnv, meshId: string, fallback: number): Promise<number> {
  const cached = placements.get(meshId);
  if (cached !== undefined) return cached;
  const placed = await readPlacement(env, meshId);
  return placed?.shard ?? fallback;
}

/** The mesh's shard for a write: placing it first when the directory has no row. */
export async function shardForWrite(env: ShardEnv, meshId: string): Promise<number> {
  const cached = placements.get(meshId);
  if (cached !== undefined) return cached;
  const placed = await readPlacement(env, meshId);
  if (placed !== null) return placed.shard;
  return (await place(env, meshId)).shard;
}

/**
 * Records the mesh's shard: the legacy shard when it already holds rows of the mesh (a tenant that
 * added shards), else the least-loaded shard. INSERT OR IGNORE then read back, so two isolates
 * placing the same mesh at once agree on whichever row landed first.
 */
export async function place(env: ShardEnv, meshId: string, now = Date.now()): Promise<Placement> {
  const shard = (await legacyHolder(env, meshId)) ?? (await leastLoaded(env, meshId));
  await env.DB.prepare(
    `INSERT OR IGNORE INTO index_directory (mesh, shard, epoch, moving_to, placed_at) VALUES (?1, ?2, 1, NULL, ?3)`,
  )
    .bind(meshId, shard, now)
    .run();
  const placed = await readPlacement(env, meshId);
  if (placed === null) throw new Error("index_directory row vanished right after it was placed");
  if (loadCache !== null && placed.shard === shard) loadCache.counts[shard] = (loadCache.counts[shard] ?? 0) + 1;
  return placed;
}

async function legacyHolder(env: ShardEnv, meshId: string): Promise<number | null> {
  const legacy = legacyShard(env);
  if (legacy === null) return null;
  const row = await shardDb(env, legacy)
    .prepare(`SELECT 1 AS y WHERE EXISTS (SELECT 1 FROM objects WHERE mesh = ?1) OR EXISTS (SELECT 1 FROM mesh_usage WHERE mesh = ?1)
              OR EXISTS (SELECT 1 FROM stored_files WHERE mesh = ?1)`)
    .bind(meshId)
    .first();
  return row === null ? null : legacy;
}

/** Meshes per shard from the directory, cached per isolate for LOAD_CACHE_MS. */
const LOAD_CACHE_MS = 60_000;
let loadCache: { at: number; counts: number[] } | null = null;

export async function meshCounts(env: ShardEnv): Promise<number[]> {
  const { results } = await env.DB.prepare(`SELECT shard, count(*) AS n FROM index_directory GROUP BY shard`).all<{
    shard: number;
    n: number;
  }>();
  const counts = allShards(env).map(() => 0);
  for (const r of results) if (r.shard >= 0 && r.shard < counts.length) counts[r.shard] = r.n;
  return counts;
}

async function leastLoaded(env: ShardEnv, meshId: string, now = Date.now()): Promise<number> {
  const n = shardCount(env);
  if (loadCache === null || now - loadCache.at >= LOAD_CACHE_MS || loadCache.counts.length !== n) {
    loadCache = { at: now, counts: await meshCounts(env) };
  }
  const counts = loadCache.counts;
  // No figures yet (a fresh tenant): the hash spreads the first meshes without any coordination.
  if (counts.every((c) => c === 0)) return hashShard(meshId, n);
  let best = 0;
  for (let i = 1; i < n; i++) if ((counts[i] ?? 0) < (counts[best] ?? 0)) best = i;
  return best;
}

/** Meshes a move has started but not finished. */
export async function listMoving(env: ShardEnv): Promise<Placement[]> {
  const { results } = await env.DB.prepare(
    `SELECT mesh, shard, epoch, moving_to, placed_at FROM index_directory WHERE moving_to IS NOT NULL ORDER BY mesh`,
  ).all<RawPlacement>();
  return results.map(fromRaw);
}

/** Up to `limit` meshes of `shard`, for the rebalance plan. */
export async function meshesOn(env: ShardEnv, shard: number, limit: number): Promise<string[]> {
  const { results } = await env.DB.prepare(
    `SELECT mesh FROM index_directory WHERE shard = ?1 AND moving_to IS NULL ORDER BY placed_at DESC LIMIT ?2`,
  )
    .bind(shard, limit)
    .all<{ mesh: string }>();
  return results.map((r) => r.mesh);
}

/** Move step (a): the directory names the target while the copy runs. */
export async function markMoving(env: ShardEnv, meshId: string, to: number): Promise<void> {
  await env.DB.prepare(`UPDATE index_directory SET moving_to = ?2 WHERE mesh = ?1`).bind(meshId, to).run();
}

/**
 * Move step (e): the switch; the mesh lives on `to` from now on, and moving_to stays set until
 * the cleanup is done. The epoch counts moves, so an operator can tell placements apart.
 */
export async function switchShard(env: ShardEnv, meshId: string, to: number): Promise<void> {
  await env.DB.prepare(`UPDATE index_directory SET shard = ?2, epoch = epoch + 1, moving_to = ?2 WHERE mesh = ?1`)
    .bind(meshId, to)
    .run();
  remember(meshId, to);
  loadCache = null;
}

/** The end of a move: nothing of the mesh is left on another shard but its fence. */
export async function finishMove(env: ShardEnv, meshId: string): Promise<void> {
  await env.DB.prepare(`UPDATE index_directory SET moving_to = NULL WHERE mesh = ?1`).bind(meshId).run();
}
