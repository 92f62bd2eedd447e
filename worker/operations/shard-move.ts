// Moving a mesh's index rows from one shard to another while devices keep writing (README
// "Index shards"). Run inside the mesh's hub (MeshHub.moveIndex), so at most one move per mesh runs
// at a time. The order is what makes it safe:
//   (a) directory: moving_to = B        (writers that meet a fence wait instead of failing)
//   (b) B: fence the mesh, then drop its leftover rows (an aborted move, or a move back); B stays
//       fenced through the copy, so an isolate that still caches B (the mesh lived there once)
//       is redirected to A instead of reading a half-copied shard or writing into it
//   (c) A: fence row                    (from here A refuses every write of the mesh, by trigger)
//   (d) copy every per-mesh row A -> B  (A is frozen, so the copy is complete; each page lifts
//       B's fence for its own statement only, inside one batch)
//   (e) directory: shard = B, epoch + 1, moving_to still B (the cleanup is pending)
//   (f) B: lift the fence; A: delete the mesh's rows (its fence row stays: stale isolates are
//       redirected); directory: moving_to = NULL
// No write is acknowledged on A after (c), none on B before (f), none is lost (A froze before the
// copy), none lands twice (B started empty of the mesh). A crash anywhere leaves moving_to set:
// running the same move again repeats the steps not yet done, each of which is idempotent.
import { shardCount, shardDb, isSharded, type ShardEnv } from "../shards/shard-bindings";
import { finishMove, markMoving, readPlacement, switchShard } from "../shards/shard-directory";

/** The per-mesh tables and the column after `mesh` in their primary key (null: one row per mesh). */
export const PER_MESH_TABLES: readonly { table: string; key: string | null }[] = [
  { table: "objects", key: "path" },
  { table: "indexed_folders", key: "folder" },
  { table: "stored_files", key: "path" },
  { table: "mesh_usage", key: null },
  { table: "mesh_hourly", key: "hour" },
];

/** Rows per copy statement (one JSON parameter) and per delete statement. */
const COPY_PAGE = 200;
const DELETE_PAGE = 1_000;

export interface MoveReport {
  mesh: string;
  from: number;
  to: number;
  /** Rows copied to the new shard. */
  rows: number;
  ms: number;
}

export type MoveResult =
  | { ok: true; report: MoveReport }
  | { ok: false; status: 400 | 404 | 409; message: string };

export async function moveMeshIndex(env: ShardEnv, meshId: string, to: number): Promise<MoveResult> {
  const started = Date.now();
  if (!isSharded(env)) return { ok: false, status: 400, message: "The index is not sharded (no INDEX_DB_<i> bindings)." };
  if (!Number.isInteger(to) || to < 0 || to >= shardCount(env)) {
    return { ok: false, status: 400, message: `shard must be an integer from 0 to ${shardCount(env) - 1}.` };
  }
  const placed = await readPlacement(env, meshId);
  if (placed === null) return { ok: false, status: 404, message: `The mesh ${meshId} has no shard yet (it was never written).` };
  if (placed.movingTo !== null && placed.movingTo !== to) {
    return { ok: false, status: 409, message: `An earlier move of ${meshId} to shard ${placed.movingTo} did not finish; run that move again first.` };
  }
  if (placed.shard === to && placed.movingTo === null) {
    return { ok: false, status: 409, message: `The mesh ${meshId} is already on shard ${to}.` };
  }
  if (placed.shard === to) {
    // Switched before a crash: only the cleanup (f) is left.
    await finishCleanup(env, meshId, to);
    return { ok: true, report: { mesh: meshId, from: to, to, rows: 0, ms: Date.now() - started } };
  }
  const from = placed.shard;
  const source = shardDb(env, from);
  const target = shardDb(env, to);

  await markMoving(env, meshId, to);
  await fence(target, meshId, from);
  await clearMesh(target, meshId);
  await fence(source, meshId, to);
  let rows = 0;
  for (const t of PER_MESH_TABLES) rows += await copyTable(source, target, meshId, t.table, t.key);
  await switchShard(env, meshId, to);
  await finishCleanup(env, meshId, to);
  return { ok: true, report: { mesh: meshId, from, to, rows, ms: Date.now() - started } };
}

function fence(db: D1Database, meshId: string, toShard: number): Promise<D1Result> {
  return db
    .prepare(`INSERT OR REPLACE INTO moved_meshes (mesh, to_shard, at) VALUES (?1, ?2, ?3)`)
    .bind(meshId, toShard, Date.now())
    .run();
}

/** Step (f): the new shard serves the mesh; every other shard that fenced it keeps only its fence. */
async function finishCleanup(env: ShardEnv, meshId: string, to: number): Promise<void> {
  const home = shardDb(env, to);
  await home.prepare(`DELETE FROM moved_meshes WHERE mesh = ?1`).bind(meshId).run();
  for (let shard = 0; shard < shardCount(env); shard++) {
    if (shard === to) continue;
    const db = shardDb(env, shard);
    const fenced = await db.prepare(`SELECT 1 AS y FROM moved_meshes WHERE mesh = ?1`).bind(meshId).first();
    if (fenced !== null) await clearMesh(db, meshId);
  }
  await finishMove(env, meshId);
}

async function columnsOf(db: D1Database, table: string): Promise<string[]> {
  const { results } = await db.prepare(`PRAGMA table_info("${table}")`).all<{ name: string }>();
  if (results.length === 0) throw new Error(`table ${table} has no columns (migrations not applied?)`);
  return results.map((r) => r.name);
}

/** Copies the mesh's rows of one table, a page at a time in key order. */
async function copyTable(source: D1Database, target: D1Database, meshId: string, table: string, key: string | null): Promise<number> {
  const columns = await columnsOf(source, table);
  const quoted = columns.map((c) => `"${c}"`).join(", ");
  const extract = columns.map((c) => `json_extract(value, '$."${c}"')`).join(", ");
  const insert = `INSERT OR REPLACE INTO "${table}" (${quoted}) SELECT ${extract} FROM json_each(?1)`;
  const held = await target.prepare(`SELECT to_shard, at FROM moved_meshes WHERE mesh = ?1`).bind(meshId).first<{ to_shard: number; at: number }>();
  // The target stays fenced for everyone else: each page lifts its fence and puts it back in one batch.
  const lift = target.prepare(`DELETE FROM moved_meshes WHERE mesh = ?1`).bind(meshId);
  const restore = held === null ? [] : [target.prepare(`INSERT INTO moved_meshes (mesh, to_shard, at) VALUES (?1, ?2, ?3)`).bind(meshId, held.to_shard, held.at)];
  let copied = 0;
  let after: unknown = null;
  for (;;) {
    const page =
      key === null
        ? await source.prepare(`SELECT ${quoted} FROM "${table}" WHERE mesh = ?1`).bind(meshId).all<Record<string, unknown>>()
        : await source
            .prepare(
              `SELECT ${quoted} FROM "${table}" WHERE mesh = ?1 AND (?2 IS NULL OR "${key}" > ?2) ORDER BY "${key}" LIMIT ${COPY_PAGE}`,
            )
            .bind(meshId, after)
            .all<Record<string, unknown>>();
    const rows = page.results;
    if (rows.length > 0) {
      await target.batch([lift, target.prepare(insert).bind(JSON.stringify(rows)), ...restore]);
      copied += rows.length;
    }
    if (key === null || rows.length < COPY_PAGE) return copied;
    after = rows[rows.length - 1]![key];
  }
}

/**
 * Deletes every row of the mesh in one fenced shard, a page per batch. The fence triggers refuse
 * deletes too, so each batch lifts the fence, deletes, and puts it back: one transaction, so no
 * other statement ever sees the shard unfenced.
 */
async function clearMesh(db: D1Database, meshId: string): Promise<void> {
  const fence = await db.prepare(`SELECT to_shard, at FROM moved_meshes WHERE mesh = ?1`).bind(meshId).first<{ to_shard: number; at: number }>();
  if (fence === null) throw new Error(`clearing ${meshId} from a shard that does not fence it`);
  const lift = db.prepare(`DELETE FROM moved_meshes WHERE mesh = ?1`).bind(meshId);
  const restore = db.prepare(`INSERT INTO moved_meshes (mesh, to_shard, at) VALUES (?1, ?2, ?3)`).bind(meshId, fence.to_shard, fence.at);
  for (const t of PER_MESH_TABLES) {
    const del =
      t.key === null
        ? db.prepare(`DELETE FROM "${t.table}" WHERE mesh = ?1`).bind(meshId)
        : db
            .prepare(
              `DELETE FROM "${t.table}" WHERE mesh = ?1 AND "${t.key}" IN (SELECT "${t.key}" FROM "${t.table}" WHERE mesh = ?1 LIMIT ${DELETE_PAGE})`,
            )
            .bind(meshId);
    for (let page = 0; page < 100_000; page++) {
      const results = await db.batch([lift, del, restore]);
      if ((results[1]?.meta.changes ?? 0) < (t.key === null ? 1 : DELETE_PAGE)) break;
    }
  }
}
