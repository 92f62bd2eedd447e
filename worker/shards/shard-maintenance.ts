// Fan-out over every index shard for the work that is not about one mesh: the maintenance cron's
// purges and prunes, its choice of idle and sampled meshes, and the admin mesh list. Unsharded,
// "every shard" is DB alone, so these are the same single queries as before.
import { allShards, shardDb, type ShardEnv } from "./shard-bindings";

/**
 * Runs `work` on every shard at once; every shard is tried even when one fails, and then the
 * first failure is thrown (named by shard) so the caller's report shows it.
 */
export async function overShards<T>(env: ShardEnv, work: (db: D1Database, shard: number) => Promise<T>): Promise<T[]> {
  const shards = allShards(env);
  const settled = await Promise.allSettled(shards.map((s) => work(shardDb(env, s), s)));
  const failed = settled.findIndex((r) => r.status === "rejected");
  if (failed !== -1) {
    const reason = (settled[failed] as PromiseRejectedResult).reason;
    throw new Error(`index shard ${failed}: ${reason instanceof Error ? reason.message : String(reason)}`, { cause: reason });
  }
  return settled.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/** The sum of a per-shard count. */
export async function sumOverShards(env: ShardEnv, work: (db: D1Database) => Promise<number>): Promise<number> {
  return (await overShards(env, (db) => work(db))).reduce((a, b) => a + b, 0);
}

/**
 * Per-shard mesh lists merged: one entry per mesh (a mesh being copied has rows in two shards for
 * a moment), ordered by `order`, at most `limit`.
 */
export async function meshesOverShards<T extends { mesh: string }>(
  env: ShardEnv,
  work: (db: D1Database) => Promise<T[]>,
  order: (a: T, b: T) => number,
  limit: number,
): Promise<T[]> {
  const seen = new Set<string>();
  const merged: T[] = [];
  for (const item of (await overShards(env, (db) => work(db))).flat().sort(order)) {
    if (seen.has(item.mesh)) continue;
    seen.add(item.mesh);
    merged.push(item);
  }
  return merged.slice(0, limit);
}
