// The per-mesh index database: what every per-mesh query runs on. Unsharded, it is DB itself
// (zero cost). Sharded, it is a handle that looks like a D1Database but records each statement's
// SQL and bindings, so it can run them on whichever shard holds the mesh and, when that shard's
// fence says the mesh moved, run them again on the new shard:
// - every batch carries the fence check `SELECT to_shard FROM moved_meshes WHERE mesh = ?` as its
//   first statement (same round trip). A read answered by a fenced shard is redone on the shard the
//   directory now names; while the directory still names the fenced shard (a copy in progress) the
//   frozen shard's answer is complete and is returned.
// - a write to a fenced shard is aborted by the shard's own triggers (the batch rolls back whole),
//   then retried on the new shard; while the copy is in progress it waits, bounded, then answers
//   503 index_moving. So each statement takes effect exactly once, on the shard that holds the mesh.
import { HttpError } from "../lib/errors";
import { isSharded, shardDb, unplacedShard, type ShardEnv } from "./shard-bindings";
import { forgetPlacement, readPlacement, shardForRead, shardForWrite } from "./shard-directory";

/** The message the fence triggers raise (migrations/0005_index_shards.sql). */
export const MOVED_MARKER = "meshbox_mesh_moved";

export function isMovedError(err: unknown): boolean {
  return String(err instanceof Error ? err.message : err).includes(MOVED_MARKER) ||
    (err instanceof Error && err.cause !== undefined && String(err.cause).includes(MOVED_MARKER));
}

/** How long a write waits for a move's copy to finish before answering 503 index_moving. */
export const MOVE_WAIT_MS = 3_000;
const MOVE_POLL_MS = 50;
/** Redirects per call: more than this means the mesh is moving back and forth; answer 503. */
const MAX_REDIRECTS = 8;

/** Statements that change rows place an unplaced mesh (a CTE only when it writes); a read or a delete never does. */
const PLACING = /^\s*(?:WITH\b[\s\S]*?\b)?(?:INSERT|UPDATE|REPLACE)\b/i;

/**
 * The database that holds `meshId`'s per-mesh rows (objects, indexed_folders, stored_files,
 * mesh_usage, mesh_hourly). Statements prepared on it must only touch that mesh's rows.
 */
export function indexDbFor(env: ShardEnv, meshId: string): D1Database {
  if (!isSharded(env)) return env.DB;
  return new MeshIndexDb(env, meshId) as unknown as D1Database;
}

/** Runs `work` on the mesh's index database (the onShard form of indexDbFor). */
export function onShard<T>(env: ShardEnv, meshId: string, work: (db: D1Database) => Promise<T>): Promise<T> {
  return work(indexDbFor(env, meshId));
}

export function indexMoving(meshId: string): HttpError {
  return new HttpError("index_moving", "The mesh's index is being moved between shards; retry shortly.", {
    extra: { mesh: meshId },
    headers: { "Retry-After": "1" },
  });
}

class MeshIndexDb {
  readonly #env: ShardEnv;
  readonly mesh: string;

  constructor(env: ShardEnv, meshId: string) {
    this.#env = env;
    this.mesh = meshId;
  }

  prepare(sql: string): ShardStatement {
    return new ShardStatement(this, sql, []);
  }

  async batch<T = unknown>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]> {
    const own = statements.map((s) => {
      if (!(s instanceof ShardStatement) || s.owner.mesh !== this.mesh) {
        throw new Error("a mesh index batch may only hold statements prepared for the same mesh");
      }
      return s;
    });
    return (await this.run(own)) as D1Result<T>[];
  }

  exec(): Promise<D1ExecResult> {
    return Promise.reject(new Error("exec is not available on a mesh index handle; use prepare"));
  }

  withSession(): D1DatabaseSession {
    throw new Error("sessions are not available on a mesh index handle");
  }

  dump(): Promise<ArrayBuffer> {
    return Promise.reject(new Error("dump is not available on a mesh index handle"));
  }

  /** The redirect loop; see the module comment. */
  async run(statements: ShardStatement[]): Promise<D1Result[]> {
    const env = this.#env;
    const mesh = this.mesh;
    const placing = statements.some((s) => PLACING.test(s.sql));
    const deadline = Date.now() + MOVE_WAIT_MS;
    let shard = placing ? await shardForWrite(env, mesh) : await shardForRead(env, mesh, unplacedShard(env, mesh));
    for (let redirects = 0; redirects <= MAX_REDIRECTS; ) {
      const db = shardDb(env, shard);
      const fence = db.prepare(`SELECT to_shard FROM moved_meshes WHERE mesh = ?1`).bind(mesh);
      let results: D1Result[];
      try {
        results = await db.batch([fence, ...statements.map((s) => s.on(db))]);
      } catch (err) {
        if (!isMovedError(err)) throw err;
        forgetPlacement(mesh);
        const now = await readPlacement(env, mesh);
        if (now !== null && now.shard !== shard) {
          shard = now.shard;
          redirects++;
          continue;
        }
        if (Date.now() >= deadline) throw indexMoving(mesh);
        await new Promise((resolve) => setTimeout(resolve, MOVE_POLL_MS));
        continue;
      }
      const [fenced, ...answers] = results;
      if ((fenced?.results.length ?? 0) === 0) return answers;
      // Fenced but nothing was refused: only reads ran. Redo them where the mesh is now.
      forgetPlacement(mesh);
      const now = await readPlacement(env, mesh);
      if (now === null || now.shard === shard) return answers;
      shard = now.shard;
      redirects++;
    }
    throw indexMoving(mesh);
  }
}

class ShardStatement {
  readonly owner: MeshIndexDb;
  readonly sql: string;
  readonly params: unknown[];

  constructor(owner: MeshIndexDb, sql: string, params: unknown[]) {
    this.owner = owner;
    this.sql = sql;
    this.params = params;
  }

  bind(...values: unknown[]): ShardStatement {
    return new ShardStatement(this.owner, this.sql, values);
  }

  /** The same statement prepared on a real shard. */
  on(db: D1Database): D1PreparedStatement {
    const prepared = db.prepare(this.sql);
    return this.params.length === 0 ? prepared : prepared.bind(...this.params);
  }

  async #one(): Promise<D1Result> {
    const [result] = await this.owner.run([this]);
    if (result === undefined) throw new Error("D1 batch returned no result");
    return result;
  }

  async first<T = unknown>(colName?: string): Promise<T | null> {
    const row = (await this.#one()).results[0] as Record<string, unknown> | undefined;
    if (row === undefined) return null;
    return (colName === undefined ? row : (row[colName] ?? null)) as T | null;
  }

  run<T = Record<string, unknown>>(): Promise<D1Result<T>> {
    return this.#one() as Promise<D1Result<T>>;
  }

  all<T = Record<string, unknown>>(): Promise<D1Result<T>> {
    return this.#one() as Promise<D1Result<T>>;
  }

  async raw<T = unknown[]>(options?: { columnNames?: boolean }): Promise<T[] | [string[], ...T[]]> {
    const rows = (await this.#one()).results as Record<string, unknown>[];
    const columns = rows[0] === undefined ? [] : Object.keys(rows[0]);
    const values = rows.map((r) => columns.map((c) => r[c]) as T);
    return options?.columnNames === true ? [columns, ...values] : values;
  }
}
