// Every mesh at a glance for the admin list (GET /admin/meshes) and tenant-wide totals
// (GET /admin/usage). A mesh is any id with index rows or a usage row. Paging is keyset on
// (sort value, mesh id) so a page never repeats or skips a mesh while others are written.
import type { Env } from "../env";
import { recoveryTotals } from "../objects/recovery";
import { overShards } from "../shards/shard-maintenance";
import { NOT_MOVED } from "../shards/shard-bindings";

export type MeshSort = "lastWrite" | "bytes" | "objects";
export type SortOrder = "asc" | "desc";

export interface MeshListEntry {
  mesh: string;
  objects: number;
  bytes: number;
  changeFiles: number;
  storedFiles: number;
  storedBytes: number;
  lastWriteAt: number | null;
  lastReadAt: number | null;
}

export interface MeshListQuery {
  prefix: string;
  sort: MeshSort;
  order: SortOrder;
  limit: number;
  /** The last row of the previous page: its sort value and mesh id. */
  after: { value: number; mesh: string } | null;
}

// Sort columns are chosen from this table, never spliced from input. Null last writes sort as -1.
const SORT_COLUMN: Record<MeshSort, string> = {
  lastWrite: "coalesce(u.last_write_at, -1)",
  bytes: "coalesce(i.bytes, 0)",
  objects: "coalesce(i.objects, 0)",
};

interface Row {
  mesh: string;
  objects: number | null;
  bytes: number | null;
  change_files: number | null;
  stored_count: number | null;
  stored_bytes: number | null;
  last_write_at: number | null;
  last_read_at: number | null;
  sort_value: number;
}

export async function listMeshes(db: D1Database, q: MeshListQuery): Promise<{ meshes: MeshListEntry[]; last: { value: number; mesh: string } | null }> {
  const key = SORT_COLUMN[q.sort];
  const cmp = q.order === "desc" ? "<" : ">";
  const dir = q.order === "desc" ? "DESC" : "ASC";
  const afterClause = q.after === null ? "" : `AND (${key} ${cmp} ?3 OR (${key} = ?3 AND m.mesh ${cmp} ?4))`;
  const sql = `
    WITH m AS (
      SELECT mesh FROM objects WHERE substr(mesh, 1, length(?1)) = ?1 AND ${NOT_MOVED}
      UNION SELECT mesh FROM mesh_usage WHERE substr(mesh, 1, length(?1)) = ?1 AND ${NOT_MOVED}
    ),
    i AS (
      SELECT mesh,
             count(*) FILTER (WHERE deleted_at IS NULL) AS objects,
             sum(size) FILTER (WHERE deleted_at IS NULL) AS bytes,
             count(*) FILTER (WHERE deleted_at IS NULL AND class = 'change') AS change_files
      FROM objects WHERE substr(mesh, 1, length(?1)) = ?1 AND location <> 'hub' AND ${NOT_MOVED} GROUP BY mesh
    )
    SELECT m.mesh, i.objects, i.bytes, i.change_files, u.stored_count, u.stored_bytes,
           u.last_write_at, u.last_read_at, ${key} AS sort_value
    FROM m LEFT JOIN i ON i.mesh = m.mesh LEFT JOIN mesh_usage u ON u.mesh = m.mesh
    WHERE 1 = 1 ${afterClause}
    ORDER BY sort_value ${dir}, m.mesh ${dir}
    LIMIT ?2`;
  const binds: unknown[] = [q.prefix, q.limit + 1];
  if (q.after !== null) binds.push(q.after.value, q.after.mesh);
  const { results } = await db.prepare(sql).bind(...binds).all<Row>();
  const page = results.slice(0, q.limit);
  const tail = page[page.length - 1];
  return {
    meshes: page.map((r) => ({
      mesh: r.mesh,
      objects: r.objects ?? 0,
      bytes: r.bytes ?? 0,
      changeFiles: r.change_files ?? 0,
      storedFiles: r.stored_count ?? 0,
      storedBytes: r.stored_bytes ?? 0,
      lastWriteAt: r.last_write_at,
      lastReadAt: r.last_read_at,
    })),
    last: results.length > q.limit && tail !== undefined ? { value: tail.sort_value, mesh: tail.mesh } : null,
  };
}

function sortValue(m: MeshListEntry, sort: MeshSort): number {
  if (sort === "lastWrite") return m.lastWriteAt ?? -1;
  return sort === "bytes" ? m.bytes : m.objects;
}

/**
 * The mesh list over every index shard: each shard answers its own page (keyset, limit + 1), and
 * the pages are merged here by the same (sort value, mesh id) order, so paging stays exact. A mesh
 * caught mid-move has rows in two shards: the first (equal) entry is kept.
 */
export async function listMeshesOverShards(
  env: Env,
  q: MeshListQuery,
): Promise<{ meshes: MeshListEntry[]; last: { value: number; mesh: string } | null }> {
  const pages = await overShards(env, (db) => listMeshes(db, q));
  const sign = q.order === "desc" ? -1 : 1;
  const all = pages
    .flatMap((p) => p.meshes)
    .map((m) => ({ m, v: sortValue(m, q.sort) }))
    .sort((a, b) => sign * (a.v - b.v || (a.m.mesh < b.m.mesh ? -1 : a.m.mesh > b.m.mesh ? 1 : 0)));
  const seen = new Set<string>();
  const merged = all.filter(({ m }) => (seen.has(m.mesh) ? false : (seen.add(m.mesh), true)));
  const page = merged.slice(0, q.limit);
  const more = merged.length > q.limit || pages.some((p) => p.last !== null);
  const tail = page[page.length - 1];
  return { meshes: page.map((x) => x.m), last: more && tail !== undefined ? { value: tail.v, mesh: tail.m.mesh } : null };
}

export interface TenantUsage {
  meshes: number;
  objects: number;
  bytes: { change: number; snapshot: number; control: number; other: number; stored: number };
  storedFiles: number;
  recovery: { count: number; bytes: number };
}

export async function readTenantUsage(env: Env): Promise<TenantUsage> {
  const shards = await overShards(env, shardUsage);
  const sum = (f: (u: TenantUsage) => number) => shards.reduce((a, u) => a + f(u), 0);
  return {
    meshes: sum((u) => u.meshes),
    objects: sum((u) => u.objects),
    bytes: {
      change: sum((u) => u.bytes.change),
      snapshot: sum((u) => u.bytes.snapshot),
      control: sum((u) => u.bytes.control),
      other: sum((u) => u.bytes.other),
      stored: sum((u) => u.bytes.stored),
    },
    storedFiles: sum((u) => u.storedFiles),
    recovery: await recoveryTotals(env.DB),
  };
}

/** One shard's totals (recovery is tenant-wide, in DB: zero here). */
async function shardUsage(db: D1Database): Promise<TenantUsage> {
  const [meshes, index, stored] = await db.batch<Record<string, number | null>>([
    db.prepare(`SELECT count(*) AS n FROM (SELECT mesh FROM objects WHERE ${NOT_MOVED} UNION SELECT mesh FROM mesh_usage WHERE ${NOT_MOVED})`),
    db.prepare(
      `SELECT count(*) AS objects,
              sum(size) FILTER (WHERE class = 'change') AS change,
              sum(size) FILTER (WHERE class = 'snapshot') AS snapshot,
              sum(size) FILTER (WHERE class NOT IN ('change', 'snapshot')) AS other
       FROM objects WHERE deleted_at IS NULL AND location <> 'hub' AND ${NOT_MOVED}`,
    ),
    // Control objects live in the hubs, which copy their bytes here from their alarms.
    db.prepare(`SELECT sum(stored_count) AS files, sum(stored_bytes) AS bytes, sum(control_bytes) AS control FROM mesh_usage WHERE ${NOT_MOVED}`),
  ]);
  const m = meshes?.results[0] ?? {};
  const i = index?.results[0] ?? {};
  const s = stored?.results[0] ?? {};
  const recovery = { count: 0, bytes: 0 };
  return {
    meshes: m.n ?? 0,
    objects: i.objects ?? 0,
    bytes: { change: i.change ?? 0, snapshot: i.snapshot ?? 0, control: s.control ?? 0, other: i.other ?? 0, stored: s.bytes ?? 0 },
    storedFiles: s.files ?? 0,
    recovery,
  };
}
