// The capacity bench's Worker: times each index statement of meshbox's write and read paths, built
// by meshbox's own statement builders (worker/objects), inside the Worker around `await`, so the
// figures are D1's service time without wrangler's HTTP proxy or the client. Driven by
// bench/index-capacity.mjs; local D1 only.
//   GET  /capacity/ready
//   POST /capacity/setup                              the fixture mesh on INDEX_DB_0 (and UNFENCED_DB), the directory in DB
//   POST /capacity/time?statement=S&samples=N&group=G N samples, each G runs of S in sequence
//   POST /capacity/throughput?dbs=K&loops=L&ms=T      L sequential loops per database on K databases
//   POST /capacity/fill?n=N                           N change-file rows into INDEX_DB_3 (bytes per row)
import { fillFolder, jsonListingOf, listChildrenJsonStatement, childParentsStatement, listingWindow, readRowStatement, tombstoneStatements, upsertUnlessDeletedStatement } from "../../worker/objects/object-index";
import type { ObjectEntry } from "../../worker/objects/object-types";
import { hourlyWriteStatement } from "../../worker/objects/usage";

interface Env {
  DB: D1Database;
  INDEX_DB_0: D1Database;
  INDEX_DB_1: D1Database;
  INDEX_DB_2: D1Database;
  INDEX_DB_3: D1Database;
  UNFENCED_DB: D1Database;
}

const MESH = "capacity_mesh_0123456789abcdef";
const LISTING_MS = 10 * 60_000;
/** Folders of the fixture mesh and their sizes (list-files of 100 and of 1,000 rows). */
const SMALL_FOLDER = "/Small/changes";
const LARGE_FOLDER = "/MyApp/changes";
/** Paths the tombstone samples delete, ten at a time; filled by setup. */
const TOMB_FOLDER = "/Tomb/changes";
const TOMB_ROWS = 20_000;
const DIRECTORY_ROWS = 1_000;
/** Per-request bounds: the driver asks for more samples in more requests. */
const MAX_RUNS_PER_REQUEST = 20_000;
const MAX_THROUGHPUT_MS = 20_000;

const JSON_HEADERS = { "Content-Type": "application/json" };

/** A change file's row as a flush creates it: HLC-named, an R2 ETag, about 800 bytes. */
function changeEntry(folder: string, i: number, at: number): ObjectEntry {
  const hlc = `${String(at).padStart(15, "0")}-${(i % 0x10000).toString(16).padStart(4, "0")}-dev_3f9a2c1b7e`;
  const id = `0192${i.toString(16).padStart(8, "0")}-7abc-7def-8123-456789abcdef`;
  return {
    path: `${folder}/${hlc}-chg_${id}.json`,
    size: 800,
    etag: `"${(i * 2654435761 >>> 0).toString(16).padStart(8, "0")}0123456789abcdef01234567"`,
    modifiedAt: at,
    cls: "change",
    location: "r2",
    version: 0,
  };
}

function shards(env: Env): D1Database[] {
  return [env.INDEX_DB_0, env.INDEX_DB_1, env.INDEX_DB_2, env.INDEX_DB_3];
}

/**
 * The shard directory in the shape migration 0005 gives it; where 0005 is not applied yet the
 * bench creates that shape itself, and where it is this is a no-op.
 */
const DIRECTORY_TABLE = `CREATE TABLE IF NOT EXISTS index_directory (
  mesh TEXT PRIMARY KEY, shard INTEGER NOT NULL, epoch INTEGER NOT NULL, moving_to INTEGER, placed_at INTEGER NOT NULL
) WITHOUT ROWID`;

/** Drops the fence triggers of migration 0005 from UNFENCED_DB (none there before 0005). */
async function dropFence(db: D1Database): Promise<number> {
  const { results } = await db.prepare(`SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%\\_fence\\_%' ESCAPE '\\'`).all<{ name: string }>();
  for (const { name } of results) await db.prepare(`DROP TRIGGER "${name.replaceAll('"', '""')}"`).run();
  return results.length;
}

async function setup(env: Env): Promise<Record<string, number>> {
  const fixture = await fillFixture(env.INDEX_DB_0);
  await fillFixture(env.UNFENCED_DB);
  const now = Date.now();
  await env.DB.prepare(DIRECTORY_TABLE).run();
  const entries = Array.from({ length: DIRECTORY_ROWS }, (_, i) => ({ m: i === 0 ? MESH : `mesh_${i}`, s: i % 4 }));
  await env.DB.prepare(
    `INSERT OR IGNORE INTO index_directory (mesh, shard, epoch, moving_to, placed_at)
     SELECT json_extract(value, '$.m'), json_extract(value, '$.s'), 1, NULL, ?2 FROM json_each(?1)`,
  )
    .bind(JSON.stringify(entries), now)
    .run();
  return { ...fixture, directory: DIRECTORY_ROWS, fenceTriggersDropped: await dropFence(env.UNFENCED_DB) };
}

/** The fixture mesh: folders of 100 and 1,000 change files, devices, snapshots, rows to tombstone. */
async function fillFixture(db: D1Database): Promise<Record<string, number>> {
  const now = Date.now();
  const rows = (folder: string, n: number) => Array.from({ length: n }, (_, i) => changeEntry(folder, i, now - n + i));
  const devices = Array.from({ length: 10 }, (_, i): ObjectEntry => ({
    path: `/MyApp/devices/dev_${String(i).padStart(10, "0")}.json`,
    size: 120,
    etag: `"${i}"`,
    modifiedAt: now,
    cls: "device",
    location: "hub",
    version: 1,
  }));
  const mainline = Array.from({ length: 5 }, (_, i): ObjectEntry => ({
    path: `/MyApp/mainline/snapshot-${i}.json`,
    size: 50_000,
    etag: `"s${i}"`,
    modifiedAt: now,
    cls: "snapshot",
    location: "r2",
    version: 0,
  }));
  await fillFolder(db, MESH, SMALL_FOLDER, rows(SMALL_FOLDER, 100), now);
  await fillFolder(db, MESH, "/MyApp", [...rows(LARGE_FOLDER, 1_000), ...devices, ...mainline], now);
  await fillFolder(db, MESH, TOMB_FOLDER, rows(TOMB_FOLDER, TOMB_ROWS), now);
  const listed = jsonListingOf(await listChildrenJsonStatement(db, MESH, LARGE_FOLDER, listingWindow(now, LISTING_MS)).all());
  return { large: (JSON.parse(listed.files) as unknown[]).length, tomb: TOMB_ROWS };
}

/** Per statement name: run number `i` of it against `db` (the fixture mesh's shard) once. */
type Runner = (db: D1Database, env: Env, i: number) => Promise<unknown>;

/** Each sampling request gets fresh change-file names, so every upsert inserts a new row as a flush does. */
let upsertSerial = 0;
let tombSerial = 0;

const RUNNERS: Record<string, Runner> = {
  // Write path. A flush's change-file PUT: the upsert that keeps a tombstone, RETURNING the mesh's last write.
  upsert: (db) => upsertUnlessDeletedStatement(db, MESH, changeEntry("/W/changes", upsertSerial++, Date.now())).run(),
  // The same upsert where the shard fence's triggers are dropped: the fence's cost is the difference.
  "upsert, no fence": (_db, env) => upsertUnlessDeletedStatement(env.UNFENCED_DB, MESH, changeEntry("/W/changes", upsertSerial++, Date.now())).run(),
  // The hourly counter alone (the dashboard's chart).
  hourly: (db) => hourlyWriteStatement(db, MESH, Date.now(), 800).run(),
  // What the PUT issues today in the steady state: one batch (one round trip) of both.
  "upsert+hourly batch": (db) => {
    const at = Date.now();
    return db.batch([upsertUnlessDeletedStatement(db, MESH, changeEntry("/B/changes", upsertSerial++, at)), hourlyWriteStatement(db, MESH, at, 800)]);
  },
  // A delete of ten change files (compaction), one statement.
  tombstone10: (db) => {
    const first = (tombSerial++ * 10) % TOMB_ROWS;
    const paths = Array.from({ length: 10 }, (_, k) => changeEntry(TOMB_FOLDER, first + k, 0).path);
    const [statement] = tombstoneStatements(db, MESH, paths, Date.now());
    return statement!.run();
  },
  // Read path.
  "read row": (db, _env, i) => readRowStatement(db, MESH, changeEntry(LARGE_FOLDER, i % 1_000, 0).path).first(),
  "list-files 100": (db) => listChildrenJsonStatement(db, MESH, SMALL_FOLDER, listingWindow(Date.now(), LISTING_MS)).all(),
  "list-files 1000": (db) => listChildrenJsonStatement(db, MESH, LARGE_FOLDER, listingWindow(Date.now(), LISTING_MS)).all(),
  "list-folders": (db) => childParentsStatement(db, MESH, "/MyApp", listingWindow(Date.now(), LISTING_MS)).all(),
  // The shard directory, in DB.
  directory: (_db, env, i) => env.DB.prepare("SELECT shard FROM index_directory WHERE mesh = ?1").bind(i % 2 === 0 ? MESH : `mesh_${i % DIRECTORY_ROWS}`).first(),
};

function intParam(url: URL, name: string, fallback: number, max: number): number {
  const value = Number(url.searchParams.get(name) ?? fallback);
  if (!Number.isInteger(value) || value < 1) return fallback;
  return Math.min(value, max);
}

/** Samples of the statement: each one the mean of `group` runs in sequence (the clock may be coarse). */
async function time(env: Env, statement: string, samples: number, group: number): Promise<number[]> {
  const run = RUNNERS[statement];
  if (run === undefined) throw new Error(`unknown statement ${statement}`);
  const db = env.INDEX_DB_0;
  const out: number[] = [];
  let i = 0;
  for (let s = 0; s < samples; s++) {
    const start = performance.now();
    for (let g = 0; g < group; g++) await run(db, env, i++);
    out.push((performance.now() - start) / group);
  }
  return out;
}

/** `loops` sequential change-file upsert loops on each of the first `dbs` shards, for `ms`. */
async function throughput(env: Env, dbs: number, loops: number, ms: number): Promise<{ perDb: number[]; elapsedMs: number }> {
  const targets = shards(env).slice(0, dbs);
  const perDb = targets.map(() => 0);
  const start = performance.now();
  const deadline = start + ms;
  const loop = async (d: number) => {
    const db = targets[d]!;
    while (performance.now() < deadline) {
      await upsertUnlessDeletedStatement(db, MESH, changeEntry("/T/changes", upsertSerial++, Date.now())).run();
      perDb[d]!++;
    }
  };
  await Promise.all(targets.flatMap((_, d) => Array.from({ length: loops }, () => loop(d))));
  return { perDb, elapsedMs: performance.now() - start };
}

/** `n` change-file rows into the otherwise unused INDEX_DB_3, with meshbox's own fill statement. */
async function fill(env: Env, n: number): Promise<{ rows: number; sizeBefore: number; sizeAfter: number }> {
  // A statement that writes nothing, for D1's figure of the database size.
  const size = async () => (await env.INDEX_DB_3.prepare("DELETE FROM indexed_folders WHERE mesh = 'none'").run()).meta.size_after;
  const sizeBefore = await size();
  const now = Date.now();
  const entries = Array.from({ length: n }, (_, i) => changeEntry("/Fill/changes", i, now - n + i));
  await fillFolder(env.INDEX_DB_3, "fill_mesh_0123456789abcdef", "/Fill/changes", entries, now);
  const probe = await env.INDEX_DB_3.prepare("SELECT count(*) AS n FROM objects").first<{ n: number }>();
  return { rows: probe?.n ?? 0, sizeBefore, sizeAfter: await size() };
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    const route = `${request.method} ${url.pathname}`;
    try {
      switch (route) {
        case "GET /capacity/ready":
          return new Response('{"ok":true}', { headers: JSON_HEADERS });
        case "POST /capacity/setup":
          return Response.json(await setup(env));
        case "POST /capacity/time": {
          const samples = intParam(url, "samples", 100, MAX_RUNS_PER_REQUEST);
          const group = intParam(url, "group", 1, Math.floor(MAX_RUNS_PER_REQUEST / samples));
          return Response.json({ group, samples: await time(env, url.searchParams.get("statement") ?? "", samples, group) });
        }
        case "POST /capacity/throughput": {
          const result = await throughput(env, intParam(url, "dbs", 1, 4), intParam(url, "loops", 1, 16), intParam(url, "ms", 3_000, MAX_THROUGHPUT_MS));
          return Response.json(result);
        }
        case "POST /capacity/fill":
          return Response.json(await fill(env, intParam(url, "n", 10_000, 100_000)));
        default:
          return new Response('{"error":"not_found"}', { status: 404, headers: JSON_HEADERS });
      }
    } catch (err) {
      return Response.json({ error: err instanceof Error ? err.message : String(err) }, { status: 500 });
    }
  },
} satisfies ExportedHandler<Env>;
