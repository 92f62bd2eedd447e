// The index sharded by mesh over 4 local D1 databases (project "workers-shards"): placement, every
// query of a mesh on its own shard, an online move while devices keep writing, and one shard down.
import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Env } from "../../worker/env";
import { clearPlacementCache, markMoving, notePlacement, place, readPlacement } from "../../worker/shards/shard-directory";
import { shardDb } from "../../worker/shards/shard-bindings";
import { indexDbFor } from "../../worker/shards/mesh-index-db";
import { moveMeshIndex } from "../../worker/operations/shard-move";
import { findIdleMeshes } from "../../worker/operations/maintenance";

/** The idle-cleanup query of the cron, on one shard, with every mesh idle since epoch 1 ms. */
async function runIdleQuery(shard: number): Promise<string[]> {
  return (await findIdleMeshes(shardDb(env, shard), 2, 1_000)).map((m) => m.mesh);
}
import { adminEnv, asAdmin, call, jsonBody } from "./admin-support";
import { changeName, ioUrl, newMesh } from "./io-support";

const ROOT = "/MyApp";
const SHARDS = [0, 1, 2, 3];

function putChange(mesh: string, name: string, target?: Env): Promise<Response> {
  const path = `${ROOT}/changes/${name}`;
  if (target !== undefined) return call(target, `/io/${mesh}/file?path=${encodeURIComponent(path)}`, { method: "PUT", body: `{"n":"${name}"}` });
  return SELF.fetch(ioUrl(mesh, "file", path), { method: "PUT", body: `{"n":"${name}"}` });
}

async function listChanges(mesh: string, target?: Env): Promise<{ status: number; names: string[] }> {
  const init = { method: "POST", body: JSON.stringify({ path: `${ROOT}/changes` }), headers: { "Content-Type": "application/json" } };
  const res = target !== undefined ? await call(target, `/io/${mesh}/list-files`, init) : await SELF.fetch(ioUrl(mesh, "list-files"), init);
  if (res.status !== 200) return { status: res.status, names: [] };
  const body = (await res.json()) as { files: { name: string }[] };
  return { status: 200, names: body.files.map((f) => f.name) };
}

async function rowsIn(shard: number, mesh: string): Promise<number> {
  const row = await shardDb(env, shard)
    .prepare(
      `SELECT (SELECT count(*) FROM objects WHERE mesh = ?1) + (SELECT count(*) FROM indexed_folders WHERE mesh = ?1)
            + (SELECT count(*) FROM mesh_usage WHERE mesh = ?1) AS n`,
    )
    .bind(mesh)
    .first<{ n: number }>();
  return row?.n ?? 0;
}

async function shardOf(mesh: string): Promise<number> {
  const placed = await readPlacement(env, mesh);
  if (placed === null) throw new Error(`mesh ${mesh} is not placed`);
  return placed.shard;
}

/** The test env with shard `to` refusing the copy of the objects table (a move then stops mid-copy). */
function copyFailingEnv(to: number): Env {
  const target = shardDb(env, to);
  const failing = new Proxy(target, {
    get(obj, prop) {
      if (prop === "prepare") {
        return (sql: string) => {
          if (sql.startsWith(`INSERT OR REPLACE INTO "objects"`)) throw new Error("D1_ERROR: injected outage during the copy");
          return obj.prepare(sql);
        };
      }
      const value = Reflect.get(obj, prop, obj) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(obj) : value;
    },
  });
  return { ...adminEnv(), [`INDEX_DB_${to}`]: failing } as Env;
}

/** A mesh written once, so it is placed; returns its shard. */
async function writtenMesh(): Promise<{ mesh: string; shard: number }> {
  const mesh = newMesh();
  expect((await putChange(mesh, changeName(0))).status).toBe(201);
  return { mesh, shard: await shardOf(mesh) };
}

type Counts = Record<number, number>;

/** The test env with every shard wrapped to count the statements prepared on it (real bindings underneath). */
function countingEnv(counts: Counts, vars: Partial<Env> = {}): Env {
  const target = adminEnv(vars) as unknown as Record<string, unknown>;
  for (const shard of SHARDS) {
    counts[shard] = 0;
    const real = shardDb(env, shard);
    target[`INDEX_DB_${shard}`] = new Proxy(real, {
      get(obj, prop) {
        const value = Reflect.get(obj, prop, obj) as unknown;
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          if (prop === "prepare") counts[shard] = (counts[shard] ?? 0) + 1;
          return (value as (...a: unknown[]) => unknown).apply(obj, args);
        };
      },
    });
  }
  return target as unknown as Env;
}

/** The test env with one shard failing every call, as when that database is unavailable. */
function downEnv(down: number): Env {
  const target = adminEnv() as unknown as Record<string, unknown>;
  target[`INDEX_DB_${down}`] = new Proxy(shardDb(env, down), {
    get(obj, prop) {
      const value = Reflect.get(obj, prop, obj) as unknown;
      if (prop === "prepare") {
        return (sql: string) => {
          const statement = (obj as D1Database).prepare(sql);
          const fail = () => Promise.reject(new Error("D1_ERROR: shard unavailable (injected)"));
          return new Proxy(statement, {
            get(s, p) {
              if (p === "bind") return (...args: unknown[]) => { statement.bind(...args); return new Proxy({}, { get: () => fail }); };
              if (p === "first" || p === "all" || p === "run" || p === "raw") return fail;
              return Reflect.get(s, p, s) as unknown;
            },
          });
        };
      }
      if (prop === "batch") return () => Promise.reject(new Error("D1_ERROR: shard unavailable (injected)"));
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(obj) : value;
    },
  });
  return target as unknown as Env;
}

describe("placement", () => {
  it("spreads new meshes over the shards and records each mesh once, on its first write", async () => {
    const meshes = Array.from({ length: 16 }, () => newMesh());
    for (const mesh of meshes) {
      // A read does not place the mesh (a listing's first fill does: it writes the folder mark).
      expect(await indexDbFor(env, mesh).prepare(`SELECT count(*) AS n FROM objects WHERE mesh = ?1`).bind(mesh).first("n")).toBe(0);
      expect(await readPlacement(env, mesh)).toBeNull();
      expect((await putChange(mesh, changeName(1))).status).toBe(201);
    }
    const shards = new Set<number>();
    for (const mesh of meshes) {
      const { results } = await env.DB.prepare(`SELECT shard FROM index_directory WHERE mesh = ?1`).bind(mesh).all<{ shard: number }>();
      expect(results).toHaveLength(1);
      shards.add(results[0]!.shard);
      for (const shard of SHARDS) expect({ shard, rows: (await rowsIn(shard, mesh)) > 0 }).toEqual({ shard, rows: shard === results[0]!.shard });
    }
    expect(shards.size).toBeGreaterThanOrEqual(3);
  });

  it("gives two racing first writes of one mesh the same shard", async () => {
    const mesh = newMesh();
    clearPlacementCache();
    const [a, b] = await Promise.all([place(env, mesh), place(env, mesh)]);
    expect(a.shard).toBe(b.shard);
    const other = newMesh();
    const puts = await Promise.all([putChange(other, changeName(1)), putChange(other, changeName(2)), putChange(other, changeName(3))]);
    expect(puts.map((r) => r.status)).toEqual([201, 201, 201]);
    const shard = await shardOf(other);
    expect((await listChanges(other)).names).toHaveLength(3);
    for (const s of SHARDS) if (s !== shard) expect(await rowsIn(s, other)).toBe(0);
  });

  it("sends every query of a mesh to its shard only", async () => {
    const { mesh, shard } = await writtenMesh();
    clearPlacementCache();
    const counts: Counts = {};
    const target = countingEnv(counts);
    expect((await putChange(mesh, changeName(2), target)).status).toBe(201);
    expect((await listChanges(mesh, target)).names).toHaveLength(2);
    const stats = await call(target, `/admin/meshes/${mesh}`, asAdmin());
    expect(stats.status).toBe(200);
    expect(counts[shard]).toBeGreaterThan(0);
    for (const s of SHARDS) if (s !== shard) expect({ s, prepared: counts[s] }).toEqual({ s, prepared: 0 });
  });
});

describe("moving a mesh", () => {
  it("loses, hides and duplicates no acknowledged write while devices keep writing", async () => {
    const { mesh, shard: from } = await writtenMesh();
    const to = (from + 1) % SHARDS.length;
    const acknowledged = new Map<string, number>(); // name -> time the PUT was acknowledged
    acknowledged.set((await listChanges(mesh)).names[0]!, Date.now());
    let moveDone = false;
    let moveStarted = Infinity;
    let moveEnded = Infinity;
    let listings = 0;
    const deadline = Date.now() + 20_000;

    const writer = async (device: string) => {
      for (let i = 0; i < 25 && Date.now() < deadline; i++) {
        const name = changeName(i, device);
        for (let attempt = 0; attempt < 10; attempt++) {
          const res = await putChange(mesh, name);
          if (res.status === 201 || res.status === 200) {
            acknowledged.set(name, Date.now());
            break;
          }
          expect(res.status).toBe(503);
        }
      }
    };
    const missing: string[] = [];
    const lister = async () => {
      for (let i = 0; i < 60 && Date.now() < deadline && !moveDone; i++) {
        const started = Date.now();
        const before = [...acknowledged].filter(([, at]) => at < started).map(([name]) => name);
        const listed = await listChanges(mesh);
        if (listed.status !== 200) continue;
        listings++;
        const seen = new Set(listed.names);
        expect(seen.size).toBe(listed.names.length);
        for (const name of before) if (!seen.has(name)) missing.push(name);
      }
    };
    const mover = async () => {
      await new Promise((resolve) => setTimeout(resolve, 150));
      moveStarted = Date.now();
      const res = await call(adminEnv(), "/admin/shards/move", { method: "POST", ...asAdmin(jsonBody({ mesh, shard: to })) });
      moveEnded = Date.now();
      moveDone = true;
      expect(res.status).toBe(200);
      const body = (await res.json()) as { mesh: string; from: number; to: number; rows: number };
      expect({ mesh: body.mesh, from: body.from, to: body.to }).toEqual({ mesh, from, to });
      expect(body.rows).toBeGreaterThan(0);
    };
    await Promise.all([writer("devA"), writer("devB"), writer("devC"), writer("devD"), lister(), mover()]);

    expect(missing).toEqual([]);
    // The move really ran in the middle: writes were acknowledged before it started and after it ended.
    const times = [...acknowledged.values()];
    expect(times.filter((t) => t < moveStarted).length).toBeGreaterThan(1);
    expect(times.filter((t) => t > moveEnded).length).toBeGreaterThan(0);
    expect(listings).toBeGreaterThan(0);
    const final = await listChanges(mesh);
    expect(final.status).toBe(200);
    expect(final.names.length).toBe(new Set(final.names).size);
    expect(new Set(final.names)).toEqual(new Set(acknowledged.keys()));
    expect(await shardOf(mesh)).toBe(to);
    expect(await rowsIn(from, mesh)).toBe(0);
    const objects = await shardDb(env, to).prepare(`SELECT count(*) AS n FROM objects WHERE mesh = ?1`).bind(mesh).first<{ n: number }>();
    expect(objects?.n).toBe(acknowledged.size);
    // A write after the move, from an isolate whose cache still names the old shard, lands on the new one.
    expect((await putChange(mesh, changeName(99, "devZ"))).status).toBe(201);
    expect(await rowsIn(from, mesh)).toBe(0);
  });

  it("redirects an isolate whose cache still names the old shard, for writes and reads", async () => {
    const { mesh, shard: from } = await writtenMesh();
    const to = (from + 3) % SHARDS.length;
    expect((await call(adminEnv(), "/admin/shards/move", { method: "POST", ...asAdmin(jsonBody({ mesh, shard: to })) })).status).toBe(200);
    // The old shard's own triggers refuse the mesh's writes.
    await expect(
      shardDb(env, from).prepare(`INSERT INTO mesh_usage (mesh, last_write_at) VALUES (?1, 1)`).bind(mesh).run(),
    ).rejects.toThrow(/meshbox_mesh_moved/);
    notePlacement(mesh, from);
    expect((await putChange(mesh, changeName(3), adminEnv())).status).toBe(201);
    expect(await rowsIn(from, mesh)).toBe(0);
    notePlacement(mesh, from);
    expect((await listChanges(mesh, adminEnv())).names).toHaveLength(2);
  });

  it("holds writes while a copy is in progress (then 503 index_moving) and serves reads from the frozen shard", async () => {
    const { mesh, shard: from } = await writtenMesh();
    const to = (from + 1) % SHARDS.length;
    // Listed once, so the folder is indexed and a listing is a pure read (a first fill is a write).
    expect((await listChanges(mesh)).names).toHaveLength(1);
    await markMoving(env, mesh, to);
    await shardDb(env, from).prepare(`INSERT INTO moved_meshes (mesh, to_shard, at) VALUES (?1, ?2, ?3)`).bind(mesh, to, Date.now()).run();
    const started = Date.now();
    const refused = await putChange(mesh, changeName(4), adminEnv());
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: string }).error).toBe("index_moving");
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_500);
    expect((await listChanges(mesh, adminEnv())).names).toHaveLength(1);
    // Finishing the move (running it again resumes it) lets the write through on the new shard.
    expect((await call(adminEnv(), "/admin/shards/move", { method: "POST", ...asAdmin(jsonBody({ mesh, shard: to })) })).status).toBe(200);
    expect((await putChange(mesh, changeName(4), adminEnv())).status).toBe(201);
    expect((await listChanges(mesh, adminEnv())).names).toHaveLength(2);
    expect(await rowsIn(from, mesh)).toBe(0);
  }, 20_000);

  it("finishes a move that failed half way when it is run again, with nothing lost or doubled", async () => {
    const { mesh, shard: from } = await writtenMesh();
    for (let i = 2; i <= 6; i++) expect((await putChange(mesh, changeName(i))).status).toBe(201);
    const before = (await listChanges(mesh)).names.sort();
    expect(before).toHaveLength(6);
    const to = (from + 2) % SHARDS.length;
    // The target shard fails while the objects are copied: the move stops after the fence went up.
    await expect(moveMeshIndex(copyFailingEnv(to), mesh, to)).rejects.toThrow(/injected outage/);
    const halfway = await readPlacement(env, mesh);
    expect(halfway).toMatchObject({ shard: from, movingTo: to });
    // The frozen shard still answers reads completely.
    expect((await listChanges(mesh, adminEnv())).names.sort()).toEqual(before);

    const again = await call(adminEnv(), "/admin/shards/move", { method: "POST", ...asAdmin(jsonBody({ mesh, shard: to })) });
    expect(again.status).toBe(200);
    expect((await listChanges(mesh, adminEnv())).names.sort()).toEqual(before);
    const rows = await shardDb(env, to).prepare(`SELECT count(*) AS n FROM objects WHERE mesh = ?1`).bind(mesh).first<{ n: number }>();
    expect(rows?.n).toBe(6);
    expect(await rowsIn(from, mesh)).toBe(0);
    expect(await readPlacement(env, mesh)).toMatchObject({ shard: to, movingTo: null, epoch: 2 });
  });

  it("keeps the target fenced during the copy, so an isolate that still caches it from an earlier stay reads and writes nothing there", async () => {
    const { mesh, shard: home } = await writtenMesh();
    const away = (home + 1) % SHARDS.length;
    const move = (shard: number) => call(adminEnv(), "/admin/shards/move", { method: "POST", ...asAdmin(jsonBody({ mesh, shard })) });
    expect((await move(away)).status).toBe(200);
    expect((await move(home)).status).toBe(200);
    expect((await putChange(mesh, changeName(7))).status).toBe(201);
    expect((await listChanges(mesh)).names).toHaveLength(2);
    // Move to `away` again, and stop it during the copy: both shards are fenced now.
    await expect(moveMeshIndex(copyFailingEnv(away), mesh, away)).rejects.toThrow(/injected outage/);
    // An isolate whose cache still says `away` is sent to the frozen home shard for reads...
    notePlacement(mesh, away);
    expect((await listChanges(mesh, adminEnv())).names).toHaveLength(2);
    // ...and its writes are held (503 index_moving), never acknowledged on the half-copied target.
    notePlacement(mesh, away);
    const held = await putChange(mesh, changeName(8), adminEnv());
    expect(held.status).toBe(503);
    expect(await rowsIn(away, mesh)).toBe(0);
    expect((await move(away)).status).toBe(200);
    expect((await putChange(mesh, changeName(8), adminEnv())).status).toBe(201);
    expect((await listChanges(mesh, adminEnv())).names).toHaveLength(3);
    expect(await rowsIn(home, mesh)).toBe(0);
  }, 20_000);

  it("finishes the cleanup of a move that stopped after its switch when it is run again", async () => {
    const { mesh, shard: from } = await writtenMesh();
    const to = (from + 1) % SHARDS.length;
    const move = () => call(adminEnv(), "/admin/shards/move", { method: "POST", ...asAdmin(jsonBody({ mesh, shard: to })) });
    expect((await move()).status).toBe(200);
    // As if it had stopped between the switch and the cleanup: the directory still says moving,
    // and the old shard still holds a frozen copy (behind its fence).
    await env.DB.prepare(`UPDATE index_directory SET moving_to = ?2 WHERE mesh = ?1`).bind(mesh, to).run();
    const old = shardDb(env, from);
    const fence = await old.prepare(`SELECT to_shard, at FROM moved_meshes WHERE mesh = ?1`).bind(mesh).first<{ to_shard: number; at: number }>();
    expect(fence).not.toBeNull();
    await old.batch([
      old.prepare(`DELETE FROM moved_meshes WHERE mesh = ?1`).bind(mesh),
      old.prepare(`INSERT INTO mesh_usage (mesh, last_write_at) VALUES (?1, 1)`).bind(mesh),
      old.prepare(`INSERT INTO moved_meshes (mesh, to_shard, at) VALUES (?1, ?2, ?3)`).bind(mesh, fence!.to_shard, fence!.at),
    ]);
    expect(await rowsIn(from, mesh)).toBe(1);
    // The cron's cross-mesh queries leave the frozen copy alone (it would look idle since epoch 1).
    expect(await runIdleQuery(from)).not.toContain(mesh);
    expect((await move()).status).toBe(200);
    expect(await rowsIn(from, mesh)).toBe(0);
    expect(await readPlacement(env, mesh)).toMatchObject({ shard: to, movingTo: null });
    expect((await move()).status).toBe(409);
  });

  it("moves a mesh back to the shard it came from", async () => {
    const { mesh, shard: from } = await writtenMesh();
    const to = (from + 2) % SHARDS.length;
    const target = adminEnv();
    const move = (shard: number) => call(target, "/admin/shards/move", { method: "POST", ...asAdmin(jsonBody({ mesh, shard })) });
    expect((await move(to)).status).toBe(200);
    expect((await putChange(mesh, changeName(5))).status).toBe(201);
    expect((await move(from)).status).toBe(200);
    expect((await listChanges(mesh)).names).toHaveLength(2);
    expect(await rowsIn(to, mesh)).toBe(0);
    expect(await shardOf(mesh)).toBe(from);
  });

  it("refuses a bad shard, an unplaced mesh and a mesh already there", async () => {
    const { mesh, shard } = await writtenMesh();
    const target = adminEnv();
    const move = (body: unknown) => call(target, "/admin/shards/move", { method: "POST", ...asAdmin(jsonBody(body)) });
    expect((await move({ mesh, shard: 9 })).status).toBe(400);
    expect((await move({ mesh, shard: "1" })).status).toBe(400);
    expect((await move({ mesh: newMesh(), shard: 0 })).status).toBe(404);
    expect((await move({ mesh, shard })).status).toBe(409);
  });
});

describe("one shard unavailable", () => {
  it("answers 503 only for meshes placed on that shard", async () => {
    const placed: { mesh: string; shard: number }[] = [];
    for (let i = 0; i < 40 && !(placed.some((p) => p.shard === 2) && placed.some((p) => p.shard !== 2)); i++) {
      placed.push(await writtenMesh());
    }
    const onDown = placed.find((p) => p.shard === 2)!;
    const elsewhere = placed.find((p) => p.shard !== 2)!;
    expect(onDown).toBeDefined();
    const target = downEnv(2);
    expect((await putChange(onDown.mesh, changeName(7), target)).status).toBe(503);
    expect((await listChanges(onDown.mesh, target)).status).toBe(503);
    expect((await putChange(elsewhere.mesh, changeName(7), target)).status).toBe(201);
    expect((await listChanges(elsewhere.mesh, target)).names).toHaveLength(2);
    const status = await call(target, "/admin/shards", asAdmin());
    expect(status.status).toBe(200);
    const body = (await status.json()) as { shards: { shard: number; available: boolean }[] };
    expect(body.shards.map((s) => s.available)).toEqual([true, true, false, true]);
  });
});

describe("adding shards to a tenant with meshes in DB (INDEX_LEGACY_SHARD)", () => {
  it("reads a mesh the directory does not know from the legacy shard, and places it there on its next write", async () => {
    const mesh = newMesh();
    const old = changeName(1);
    const legacy = shardDb(env, 0);
    // The mesh as it was before shards: rows in the database now bound as shard 0, no directory row.
    await legacy.batch([
      legacy
        .prepare(
          `INSERT INTO objects (mesh, path, parent, name, size, etag, modified_at, class, location, version, deleted_at)
           VALUES (?1, ?2, '/MyApp/changes', ?3, 2, '"e"', 1, 'change', 'r2', 0, NULL)`,
        )
        .bind(mesh, `${ROOT}/changes/${old}`, old),
      legacy.prepare(`INSERT INTO indexed_folders (mesh, folder, indexed_at) VALUES (?1, '/', 1)`).bind(mesh),
      legacy.prepare(`INSERT INTO mesh_usage (mesh, last_write_at) VALUES (?1, 1)`).bind(mesh),
    ]);
    const target = adminEnv({ INDEX_LEGACY_SHARD: "0" });
    clearPlacementCache();
    expect((await listChanges(mesh, target)).names).toEqual([old]);
    expect((await putChange(mesh, changeName(2), target)).status).toBe(201);
    expect(await shardOf(mesh)).toBe(0);
    expect((await listChanges(mesh, target)).names).toHaveLength(2);
    for (const s of [1, 2, 3]) expect(await rowsIn(s, mesh)).toBe(0);
  });
});

describe("admin shard routes", () => {
  it("report every shard's meshes and objects, and plan a rebalance without moving on a dry run", async () => {
    await writtenMesh();
    const target = adminEnv();
    const res = await call(target, "/admin/shards", asAdmin());
    expect(res.status).toBe(200);
    const status = (await res.json()) as { count: number; shards: { shard: number; binding: string; meshes: number; objects: number; available: boolean }[]; moving: unknown[] };
    expect(status.count).toBe(4);
    expect(status.shards.map((s) => s.binding)).toEqual(["INDEX_DB_0", "INDEX_DB_1", "INDEX_DB_2", "INDEX_DB_3"]);
    expect(status.shards.reduce((a, s) => a + s.meshes, 0)).toBeGreaterThan(0);
    expect(status.moving).toEqual([]);

    // Crowd shard 0, then ask for a plan.
    for (let i = 0; i < 6; i++) {
      const mesh = newMesh();
      await env.DB.prepare(`INSERT INTO index_directory (mesh, shard, epoch, moving_to, placed_at) VALUES (?1, 0, 1, NULL, ?2)`)
        .bind(mesh, Date.now())
        .run();
    }
    const before = await env.DB.prepare(`SELECT shard, count(*) AS n FROM index_directory GROUP BY shard`).all<{ shard: number; n: number }>();
    const plan = await call(target, "/admin/shards/rebalance", { method: "POST", ...asAdmin(jsonBody({ dryRun: true, maxMoves: 50 })) });
    expect(plan.status).toBe(200);
    const planned = (await plan.json()) as { dryRun: boolean; moves: { mesh: string; from: number; to: number }[] };
    expect(planned.dryRun).toBe(true);
    expect(planned.moves.length).toBeGreaterThan(0);
    const counts = new Map(before.results.map((r) => [r.shard, r.n]));
    for (const m of planned.moves) {
      counts.set(m.from, (counts.get(m.from) ?? 0) - 1);
      counts.set(m.to, (counts.get(m.to) ?? 0) + 1);
    }
    const after = SHARDS.map((s) => counts.get(s) ?? 0);
    expect(Math.max(...after) - Math.min(...after)).toBeLessThanOrEqual(1);
    const unchanged = await env.DB.prepare(`SELECT shard, count(*) AS n FROM index_directory GROUP BY shard`).all<{ shard: number; n: number }>();
    expect(unchanged.results).toEqual(before.results);
    expect((await call(target, "/admin/shards/rebalance", { method: "POST", ...asAdmin(jsonBody({ dryRun: "yes" })) })).status).toBe(400);
  });
});
