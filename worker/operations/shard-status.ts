// What the admin shard routes report and plan: meshes and index rows per shard, moves in flight,
// and the rebalance plan (fullest to emptiest by mesh count until within one).
import { allShards, isSharded, shardCount, shardDb, shardName, type ShardEnv } from "../shards/shard-bindings";
import { listMoving, meshCounts, meshesOn } from "../shards/shard-directory";

export interface ShardFigures {
  shard: number;
  binding: string;
  meshes: number;
  objects: number;
  /** False when the shard did not answer; the other figures are then 0. */
  available: boolean;
}

export interface ShardStatus {
  count: number;
  shards: ShardFigures[];
  moving: { mesh: string; from: number; to: number }[];
}

export async function readShardStatus(env: ShardEnv): Promise<ShardStatus> {
  const sharded = isSharded(env);
  const [counts, moving] = sharded ? await Promise.all([meshCounts(env), listMoving(env)]) : [null, []];
  const shards = await Promise.all(
    allShards(env).map(async (shard): Promise<ShardFigures> => {
      const binding = shardName(env, shard);
      try {
        const db = shardDb(env, shard);
        const row = await db
          .prepare(`SELECT (SELECT count(*) FROM objects WHERE deleted_at IS NULL) AS objects, (SELECT count(*) FROM mesh_usage) AS meshes`)
          .first<{ objects: number; meshes: number }>();
        return { shard, binding, meshes: counts?.[shard] ?? row?.meshes ?? 0, objects: row?.objects ?? 0, available: true };
      } catch (err) {
        console.error(JSON.stringify({ level: "warn", msg: "index shard did not answer", shard, error: String(err) }));
        return { shard, binding, meshes: counts?.[shard] ?? 0, objects: 0, available: false };
      }
    }),
  );
  return {
    count: shardCount(env),
    shards,
    moving: moving.map((p) => ({ mesh: p.mesh, from: p.shard, to: p.movingTo ?? p.shard })),
  };
}

export interface PlannedMove {
  mesh: string;
  from: number;
  to: number;
}

/** Moves that bring every shard's mesh count within one of every other's (at most `maxMoves`). */
export async function planRebalance(env: ShardEnv, maxMoves: number): Promise<PlannedMove[]> {
  if (!isSharded(env)) return [];
  const counts = await meshCounts(env);
  const pools = new Map<number, string[]>();
  const plan: PlannedMove[] = [];
  while (plan.length < maxMoves) {
    let full = 0;
    let empty = 0;
    counts.forEach((c, i) => {
      if (c > counts[full]!) full = i;
      if (c < counts[empty]!) empty = i;
    });
    if (counts[full]! - counts[empty]! <= 1) break;
    if (!pools.has(full)) pools.set(full, await meshesOn(env, full, maxMoves));
    const mesh = pools.get(full)!.shift();
    if (mesh === undefined) break;
    plan.push({ mesh, from: full, to: empty });
    counts[full]!--;
    counts[empty]!++;
  }
  return plan;
}
