// Upgrades, not fresh installs: a tenant's D1 already holds rows when `wrangler d1 migrations
// apply` runs a new migration. MIGRATION_DB starts empty; each test rebuilds it to an older
// schema, writes rows the way that schema's Worker did, and applies the rest.
import { applyD1Migrations, env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { listChildren, listingWindow, readRow, upsertEntry } from "../../worker/objects/object-index";

const db = () => env.MIGRATION_DB;
const before = (name: string) => env.TEST_MIGRATIONS.filter((m) => m.name < name);

async function emptyDatabase(): Promise<void> {
  const { results } = await db()
    .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'`)
    .all<{ name: string }>();
  for (const { name } of results) await db().exec(`DROP TABLE IF EXISTS "${name}"`);
}

async function schemaOf(database: D1Database, sql: string): Promise<unknown[]> {
  return (await database.prepare(sql).all()).results;
}

// An index built before 0007 upgrades through both rebuilds; one that ran 0007 through 0008 only.
describe.each(["0007", "0008"])("upgrading an index built before migration %s", (first) => {
  beforeEach(emptyDatabase);

  it("keeps every row of an index built before it, and lists them as before", async () => {
    await applyD1Migrations(db(), before(first));
    const insert = db().prepare(
      `INSERT INTO objects (mesh, path, parent, name, size, etag, modified_at, class, location, version, deleted_at)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10)`,
    );
    await db().batch([
      insert.bind("m1", "/R/changes/1-chg_a.json", "/R/changes", "1-chg_a.json", 812, '"e1"', 1_700_000_000_001, "change", "r2", null),
      insert.bind("m1", "/R/changes/2-chg_b.json", "/R/changes", "2-chg_b.json", 90, '"e2"', 1_700_000_000_002, "change", "r2", 1_700_000_000_500),
      insert.bind("m1", "/R/changes/head.json", "/R/changes", "head.json", 30, '"h"', 1_700_000_000_003, "head", "hub", null),
      insert.bind("m2", "/R/changes/1-chg_c.json", "/R/changes", "1-chg_c.json", 5, '"e3"', 1_700_000_000_004, "change", "r2", null),
    ]);
    await applyD1Migrations(db(), env.TEST_MIGRATIONS);

    const window = listingWindow(1_700_000_001_000, 600_000);
    expect(await listChildren(db(), "m1", "/R/changes", window)).toEqual([
      { name: "1-chg_a.json", path: "/R/changes/1-chg_a.json", size: 812, etag: '"e1"', modifiedTime: new Date(1_700_000_000_001).toISOString() },
      { name: "2-chg_b.json", path: "/R/changes/2-chg_b.json", size: 90, etag: '"e2"', modifiedTime: new Date(1_700_000_000_500).toISOString() },
    ]);
    expect(await readRow(db(), "m2", "/R/changes/1-chg_c.json")).toMatchObject({ size: 5, etag: '"e3"', deletedAt: null });
    // The legacy hub row is still there for maintenance to drop, through the partial index.
    expect(await db().prepare(`SELECT count(*) AS n FROM objects WHERE location = 'hub'`).first("n")).toBe(1);
  });

  it("leaves the table with the indexes, fence triggers and columns of a database built from scratch", async () => {
    await applyD1Migrations(db(), before(first));
    await applyD1Migrations(db(), env.TEST_MIGRATIONS);
    const objectsSchema = `SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'objects' ORDER BY type, name`;
    const upgraded = await schemaOf(db(), objectsSchema);
    expect(upgraded).toEqual(await schemaOf(env.DB, objectsSchema));
    expect(upgraded.map((r) => (r as { name: string }).name)).toEqual(
      expect.arrayContaining(["objects_by_path", "objects_tombstones", "objects_legacy_hub", "objects_fence_insert", "objects_fence_update", "objects_fence_delete"]),
    );
  });

  it("still refuses every write of a mesh that has moved away (the 0005 fence)", async () => {
    await applyD1Migrations(db(), before(first));
    await applyD1Migrations(db(), env.TEST_MIGRATIONS);
    const entry = { path: "/R/x.bin", size: 1, etag: '"x"', modifiedAt: 1_000, cls: "other" as const, location: "r2" as const, version: 0 };
    await upsertEntry(db(), "gone", entry);
    await db().prepare(`INSERT INTO moved_meshes (mesh, to_shard, at) VALUES ('gone', 1, 2000)`).run();
    await expect(upsertEntry(db(), "gone", { ...entry, etag: '"y"' })).rejects.toThrow(/meshbox_mesh_moved/);
    await expect(db().prepare(`DELETE FROM objects WHERE mesh = 'gone'`).run()).rejects.toThrow(/meshbox_mesh_moved/);
    expect((await readRow(db(), "gone", "/R/x.bin"))?.etag).toBe('"x"');
  });
});
