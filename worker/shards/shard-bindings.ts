// Which D1 databases hold the per-mesh tables (README "Index shards"). The shards are the bindings
// INDEX_DB_0 .. INDEX_DB_<N-1>, counted from 0 up to the first gap; with none bound, DB is the
// only shard (the layout before sharding: no directory, no fence, no extra statement).
// Typed structurally so the hub can use it without importing the Worker's Env (that would cycle).

export type IndexShardBinding = `INDEX_DB_${number}`;

/**
 * What the shard code needs of an env. The INDEX_DB_<i> bindings are looked up by name (boundShard)
 * rather than typed as an index signature: an app's own Env interface, which has none, must stay
 * assignable to meshbox's.
 */
export interface ShardEnv {
  DB: D1Database;
  /** Meshes absent from the directory whose rows may still sit in this shard (adding shards to a tenant). */
  INDEX_LEGACY_SHARD?: string;
}

/** The INDEX_DB_<shard> binding, or undefined when it is not bound. */
export function boundShard(env: ShardEnv, shard: number): D1Database | undefined {
  return (env as unknown as Record<string, D1Database | undefined>)[shardBinding(shard)];
}

/** More than this many bindings is a configuration mistake, not a plan: stop counting there. */
export const MAX_SHARDS = 256;

export function shardBinding(shard: number): IndexShardBinding {
  return `INDEX_DB_${shard}`;
}

/** N: the number of consecutive INDEX_DB_<i> bindings, or 1 (DB itself) when there are none. */
export function shardCount(env: ShardEnv): number {
  let n = 0;
  while (n < MAX_SHARDS && boundShard(env, n) !== undefined) n++;
  return Math.max(1, n);
}

/** Whether the index is sharded at all (N > 1, or a single INDEX_DB_0 distinct from DB). */
export function isSharded(env: ShardEnv): boolean {
  return boundShard(env, 0) !== undefined;
}

/** The database of shard `shard`; DB when the index is not sharded. */
export function shardDb(env: ShardEnv, shard: number): D1Database {
  if (!isSharded(env)) return env.DB;
  const db = boundShard(env, shard);
  if (db === undefined) throw new Error(`index shard ${shard} is not bound`);
  return db;
}

/** The binding's name as shown to operators ("DB" when unsharded). */
export function shardName(env: ShardEnv, shard: number): string {
  return isSharded(env) ? shardBinding(shard) : "DB";
}

/** Every shard's number, 0 .. N-1. */
export function allShards(env: ShardEnv): number[] {
  return Array.from({ length: shardCount(env) }, (_, i) => i);
}

/** The shard an unplaced mesh is read from: the legacy shard when one is named, else its hash. */
export function unplacedShard(env: ShardEnv, meshId: string): number {
  const legacy = legacyShard(env);
  return legacy ?? hashShard(meshId, shardCount(env));
}

export function legacyShard(env: ShardEnv): number | null {
  const raw = env.INDEX_LEGACY_SHARD;
  if (raw === undefined || raw.trim() === "") return null;
  const n = Number(raw);
  return Number.isInteger(n) && n >= 0 && n < shardCount(env) ? n : null;
}

/** FNV-1a of the mesh id: stable across isolates and deploys, spread evenly enough for placement. */
export function hashShard(meshId: string, count: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < meshId.length; i++) {
    h ^= meshId.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % count;
}

/**
 * Cross-mesh maintenance on one shard skips the meshes its fence names (migration 0005): their
 * rows there are frozen copies of a mesh that lives, or is moving, elsewhere; touching them would
 * act on stale state (a purge could delete a body the mesh wrote again) and a fenced row aborts
 * the whole statement.
 */
export const NOT_MOVED = "mesh NOT IN (SELECT mesh FROM moved_meshes)";
