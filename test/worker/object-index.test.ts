import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  fillFolder,
  isIndexed,
  isListed,
  LIST_CHILDREN_SQL,
  LIVE_SUBTREE_SQL,
  listLiveSubtree,
  listChildFolders,
  listChildren,
  listingWindow,
  markPurgedStatements,
  readRow,
  selfAndAncestors,
  subtreeRange,
  tombstoneEntries,
  upsertEntry,
} from "../../worker/objects/object-index";
import { toFileInfo, type ObjectEntry } from "../../worker/objects/object-types";

const mesh = () => `idx-${crypto.randomUUID()}`;
/** The default window (10 minutes) at a moment long after every tombstone these tests write. */
const later = listingWindow(1_000_000_000, 600_000);

function entry(path: string, over: Partial<ObjectEntry> = {}): ObjectEntry {
  return { path, size: 3, etag: '"e1"', modifiedAt: 1_000, cls: "other", location: "r2", version: 0, ...over };
}

describe("upsertEntry", () => {
  it("inserts a live row and records the mesh's last write time", async () => {
    const m = mesh();
    await upsertEntry(env.DB, m, entry("/a/b.txt", { modifiedAt: 5_000 }));
    expect(await readRow(env.DB, m, "/a/b.txt")).toEqual({ ...entry("/a/b.txt", { modifiedAt: 5_000 }), deletedAt: null });
    const usage = await env.DB.prepare("SELECT last_write_at FROM mesh_usage WHERE mesh = ?").bind(m).first();
    expect(usage).toEqual({ last_write_at: 5_000 });
  });

  it("never moves a hub entry to an older version", async () => {
    const m = mesh();
    const path = "/R/changes/head.json";
    await upsertEntry(env.DB, m, entry(path, { cls: "head", location: "hub", version: 7, etag: '"v7"' }));
    await upsertEntry(env.DB, m, entry(path, { cls: "head", location: "hub", version: 6, etag: '"v6"' }));
    expect((await readRow(env.DB, m, path))?.etag).toBe('"v7"');
    await upsertEntry(env.DB, m, entry(path, { cls: "head", location: "hub", version: 8, etag: '"v8"' }));
    expect((await readRow(env.DB, m, path))?.etag).toBe('"v8"');
  });

  it("clears a tombstone when a newer write arrives", async () => {
    const m = mesh();
    await upsertEntry(env.DB, m, entry("/x"));
    await tombstoneEntries(env.DB, m, ["/x"], 2_000);
    expect((await readRow(env.DB, m, "/x"))?.deletedAt).toBe(2_000);
    await upsertEntry(env.DB, m, entry("/x", { etag: '"e2"' }));
    expect(await readRow(env.DB, m, "/x")).toMatchObject({ etag: '"e2"', deletedAt: null });
  });
});

describe("each row's stored list-files entry (migration 0007)", () => {
  const described = (e: ObjectEntry, at = e.modifiedAt) => ({ ...toFileInfo(e), modifiedTime: new Date(at).toISOString() });

  it("is the entry the Worker would build, for names JSON must escape and times with every millisecond digit", async () => {
    const m = mesh();
    const rows = [
      entry('/R/f/quote"back\\slash.bin', { modifiedAt: 1_700_000_000_007, size: 0 }),
      entry("/R/f/ünï cødé ✓.json", { modifiedAt: 1_700_000_000_070, size: 2 ** 40 }),
      entry("/R/f/tab\tnew\nline", { modifiedAt: 1_700_000_000_700, etag: '"w/\\x"' }),
      entry("/R/f/zero", { modifiedAt: 0 }),
    ];
    for (const row of rows) await upsertEntry(env.DB, m, row);
    const listed = await listChildren(env.DB, m, "/R/f", later);
    expect(listed).toEqual(rows.map((r) => described(r)).sort((a, b) => (a.name < b.name ? -1 : 1)));
  });

  it("follows its row through an overwrite, a tombstone and a revival", async () => {
    const m = mesh();
    const path = "/R/changes/a-chg_1.json";
    const first = entry(path, { cls: "change", modifiedAt: 10_001, size: 5, etag: '"a"' });
    const second = { ...first, modifiedAt: 20_002, size: 9, etag: '"b"' };
    const inside = listingWindow(30_003 + 1, 600_000);
    await upsertEntry(env.DB, m, first);
    await upsertEntry(env.DB, m, second);
    expect(await listChildren(env.DB, m, "/R/changes", inside)).toEqual([described(second)]);
    await tombstoneEntries(env.DB, m, [path], 30_003);
    expect(await listChildren(env.DB, m, "/R/changes", inside)).toEqual([described(second, 30_003)]);
    const third = { ...second, modifiedAt: 40_004, size: 1, etag: '"c"' };
    await upsertEntry(env.DB, m, third);
    expect(await listChildren(env.DB, m, "/R/changes", inside)).toEqual([described(third)]);
  });
});

describe("query plans (a statement's cost follows what it reads, not the mesh's size)", () => {
  const plan = async (sql: string, ...args: unknown[]) =>
    ((await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`).bind(...args).all<{ detail: string }>()).results).map((r) => r.detail);

  it("reads a folder's listing as one run of the primary key, with no sort", async () => {
    const steps = await plan(LIST_CHILDREN_SQL, "m", "/R/changes", 0, '["/"]');
    expect(steps).toContain("SEARCH objects USING PRIMARY KEY (mesh=? AND parent=?)");
    expect(steps.filter((s) => s.includes("TEMP B-TREE"))).toEqual([]);
  });

  it("reads a path's subtree as one range of objects_by_path", async () => {
    expect(await plan(LIVE_SUBTREE_SQL, "m", "/R/x", "/R/x/", "/R/x0")).toEqual([
      "SEARCH objects USING INDEX objects_by_path (mesh=? AND path>? AND path<?)",
    ]);
  });

  it("lists a path's subtree without its siblings whose names extend it", async () => {
    const m = mesh();
    for (const path of ["/R/x", "/R/x/a", "/R/x/b/c", "/R/x!", "/R/x.json", "/R/xy", "/R/w"]) await upsertEntry(env.DB, m, entry(path));
    expect((await listLiveSubtree(env.DB, m, "/R/x")).map((r) => r.path).sort()).toEqual(["/R/x", "/R/x/a", "/R/x/b/c"]);
    expect((await listLiveSubtree(env.DB, m, "/")).length).toBe(7);
  });
});

describe("tombstoneEntries", () => {
  it("tombstones a path the index has never seen, so a later fill cannot resurrect it", async () => {
    const m = mesh();
    await tombstoneEntries(env.DB, m, ["/R/other.bin"], 3_000);
    await fillFolder(env.DB, m, "/R", [entry("/R/other.bin"), entry("/R/kept.bin")], 4_000);
    expect((await listChildren(env.DB, m, "/R", later)).map((r) => r.path)).toEqual(["/R/kept.bin"]);
    expect(await isIndexed(env.DB, m, "/R/deeper/still")).toBe(true);
    expect(await isIndexed(env.DB, m, "/Rx")).toBe(false);
  });

  it("ignores a hub delete older than the row's version and keeps the first deletion time", async () => {
    const m = mesh();
    const path = "/R/devices/d1.json";
    await upsertEntry(env.DB, m, entry(path, { cls: "device", location: "hub", version: 5 }));
    await tombstoneEntries(env.DB, m, [path], 1_500, 4);
    expect((await readRow(env.DB, m, path))?.deletedAt).toBeNull();
    await tombstoneEntries(env.DB, m, [path], 1_600, 6);
    await tombstoneEntries(env.DB, m, [path], 1_700, 7);
    expect(await readRow(env.DB, m, path)).toMatchObject({ deletedAt: 1_600, version: 7 });
    await upsertEntry(env.DB, m, entry(path, { cls: "device", location: "hub", version: 6 }));
    expect((await readRow(env.DB, m, path))?.deletedAt).toBe(1_600);
  });

  it("handles more paths than fit in one statement", async () => {
    const m = mesh();
    const paths = Array.from({ length: 450 }, (_, i) => `/big/f${String(i).padStart(4, "0")}`);
    await fillFolder(env.DB, m, "/big", paths.map((p) => entry(p)), 1);
    expect(await listChildren(env.DB, m, "/big", later)).toHaveLength(450);
    await tombstoneEntries(env.DB, m, paths, 2);
    expect(await listChildren(env.DB, m, "/big", later)).toHaveLength(0);
  });
});

describe("listChildFolders", () => {
  it("names each child folder once, sorted, ignoring tombstoned subtrees", async () => {
    const m = mesh();
    for (const p of ["/R/b/x", "/R/a/y/z", "/R/a/w", "/R/file", "/R/gone/q", "/Rx/no"]) await upsertEntry(env.DB, m, entry(p));
    await tombstoneEntries(env.DB, m, ["/R/gone/q"], 9);
    expect(await listChildFolders(env.DB, m, "/R", later)).toEqual(["a", "b"]);
    expect(await listChildFolders(env.DB, m, "/", later)).toEqual(["R", "Rx"]);
  });
});

describe("the listing window of deleted change files", () => {
  const change = (name: string) => entry(`/R/changes/${name}`, { cls: "change", modifiedAt: 1_000, size: 7, etag: '"c1"' });

  it("lists a change file deleted inside the window with its size, etag and the deletion time as modifiedAt", async () => {
    const m = mesh();
    await upsertEntry(env.DB, m, change("a-chg_1.json"));
    await tombstoneEntries(env.DB, m, ["/R/changes/a-chg_1.json"], 50_000);
    const inside = listingWindow(50_000 + 599_999, 600_000);
    expect(await listChildren(env.DB, m, "/R/changes", inside)).toEqual([
      { name: "a-chg_1.json", path: "/R/changes/a-chg_1.json", size: 7, etag: '"c1"', modifiedTime: new Date(50_000).toISOString() },
    ]);
    expect(await listChildFolders(env.DB, m, "/R", inside)).toEqual(["changes"]);
    expect(isListed((await readRow(env.DB, m, "/R/changes/a-chg_1.json"))!, inside)).toBe(true);
  });

  it("stops listing it when the window has run out, and never lists it with a window of 0", async () => {
    const m = mesh();
    await upsertEntry(env.DB, m, change("a-chg_1.json"));
    await tombstoneEntries(env.DB, m, ["/R/changes/a-chg_1.json"], 50_000);
    const past = listingWindow(50_000 + 600_000, 600_000);
    expect(await listChildren(env.DB, m, "/R/changes", past)).toEqual([]);
    expect(await listChildFolders(env.DB, m, "/R", past)).toEqual([]);
    expect(await listChildren(env.DB, m, "/R/changes", listingWindow(50_000, 0))).toEqual([]);
    expect(isListed((await readRow(env.DB, m, "/R/changes/a-chg_1.json"))!, past)).toBe(false);
  });

  it("never lists a deleted file of another class, nor a change file whose body is purged", async () => {
    const m = mesh();
    await upsertEntry(env.DB, m, change("a-chg_1.json"));
    await upsertEntry(env.DB, m, entry("/R/changes/notes.txt"));
    await tombstoneEntries(env.DB, m, ["/R/changes/a-chg_1.json", "/R/changes/notes.txt"], 50_000);
    const inside = listingWindow(50_001, 600_000);
    expect((await listChildren(env.DB, m, "/R/changes", inside)).map((r) => r.path)).toEqual(["/R/changes/a-chg_1.json"]);
    await env.DB.batch(markPurgedStatements(env.DB, [{ mesh: m, path: "/R/changes/a-chg_1.json" }]));
    expect(await listChildren(env.DB, m, "/R/changes", inside)).toEqual([]);
  });

  it("keeps the window through a fill of a folder never indexed, which cannot revive the tombstone", async () => {
    const m = mesh();
    await upsertEntry(env.DB, m, change("a-chg_1.json"));
    await tombstoneEntries(env.DB, m, ["/R/changes/a-chg_1.json"], 50_000);
    // R2 still holds the body (its grace), so a fill of /R from R2 lists it as if it were live.
    await fillFolder(env.DB, m, "/R", [change("a-chg_1.json"), change("b-chg_2.json")], 60_000);
    const inside = listingWindow(60_000, 600_000);
    const described = (name: string, at: number) => ({ name, path: `/R/changes/${name}`, size: 7, etag: '"c1"', modifiedTime: new Date(at).toISOString() });
    // The tombstone is described by its deletion time; the fill did not make it live again.
    expect(await listChildren(env.DB, m, "/R/changes", inside)).toEqual([described("a-chg_1.json", 50_000), described("b-chg_2.json", 1_000)]);
    expect((await readRow(env.DB, m, "/R/changes/a-chg_1.json"))?.deletedAt).toBe(50_000);
    const past = listingWindow(50_000 + 600_000, 600_000);
    expect((await listChildren(env.DB, m, "/R/changes", past)).map((r) => r.path)).toEqual(["/R/changes/b-chg_2.json"]);
  });
});

describe("path ranges", () => {
  it("lists a folder's ancestors root first and its subtree range", () => {
    expect(selfAndAncestors("/a/b/c")).toEqual(["/", "/a", "/a/b", "/a/b/c"]);
    expect(selfAndAncestors("/")).toEqual(["/"]);
    expect(subtreeRange("/a")).toEqual(["/a/", "/a0"]);
  });
});
