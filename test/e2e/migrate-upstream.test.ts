// The move from the upstream Interocitor Workers runtime as an operator does it, with the device
// simulator on both sides. Devices sync, compact and sync again against a first server; every
// object they left there is read back over the protocol and written into a local D1 in upstream's
// schema (UPSTREAM.md: one `files` row per object, bytes inline, modified_time as ISO text, a
// quoted etag). A second meshbox has that database and a bucket bound as LEGACY_DB / LEGACY_FILES;
// `meshbox migrate-upstream` moves the meshes, and the SAME device instances, their local state
// intact, are pointed at it: they carry on without re-bootstrapping, and a new device joins from the
// migrated snapshot.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Device } from "./support/device";
import { startWorker, type RunningWorker } from "./support/worker-process";

const ROOT = path.resolve(import.meta.dirname, "..", "..");
const CLI = path.join(ROOT, "scripts", "meshbox-cli.mjs");
const WRANGLER = path.join(ROOT, "node_modules", ".bin", "wrangler");
const ADMIN_TOKEN = "e2e-migrate-admin-token-0123456789";
const FOLDERS = ["", "devices", "mainline", "changes"];

const workers: RunningWorker[] = [];
const devices: Device[] = [];
const state = mkdtempSync(path.join(tmpdir(), "meshbox-migrate-"));

afterAll(async () => {
  await Promise.all(devices.map((d) => d.close()));
  for (const w of workers) await w.stop();
  rmSync(state, { recursive: true, force: true });
});

/** A device that must never bootstrap once its mesh exists: that would be a client starting over. */
function device(base: string, mesh: string, name: string, mayBootstrap = false): Device {
  const d = new Device({ base, mesh, deviceId: `${name}_${crypto.randomUUID().slice(0, 8)}` });
  if (!mayBootstrap) forbidBootstrap(d);
  devices.push(d);
  return d;
}

function forbidBootstrap(d: Device): void {
  d.bootstrap = async () => {
    throw new Error(`${d.deviceId} tried to bootstrap`);
  };
}

interface LegacyRow {
  path: string;
  content: Uint8Array;
  modifiedTime: string;
  etag: string;
}

/** Every object of a mesh as a device reads it: listed folder by folder, each body fetched. */
async function readBack(base: string, mesh: string): Promise<LegacyRow[]> {
  const rows: LegacyRow[] = [];
  const io = `${base}/io/${encodeURIComponent(mesh)}`;
  for (const folder of FOLDERS) {
    const res = await fetch(`${io}/list-files`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ path: `/MyApp${folder ? `/${folder}` : ""}` }) });
    expect(res.status).toBe(200);
    const { files } = (await res.json()) as { files: { path: string; modifiedTime: string; etag: string }[] };
    for (const file of files) {
      const body = await fetch(`${io}/file?path=${encodeURIComponent(file.path)}`);
      const bytes = new Uint8Array(await body.arrayBuffer());
      // A change file a compaction deleted stays listed for a while; upstream simply lost it.
      if (body.status === 404) continue;
      expect(body.status).toBe(200);
      rows.push({ path: file.path, content: bytes, modifiedTime: file.modifiedTime, etag: file.etag.startsWith('"') ? file.etag : `"${file.etag}"` });
    }
  }
  return rows;
}

const sql = (text: string) => `'${text.replaceAll("'", "''")}'`;

function legacySql(meshes: Map<string, LegacyRow[]>): string {
  const lines = [
    // Upstream's tables as its schema creates them (UPSTREAM.md).
    `CREATE TABLE files (prefix TEXT, path TEXT, content BLOB, size INTEGER, modified_time INTEGER, etag TEXT, PRIMARY KEY (prefix, path));`,
    `CREATE TABLE folders (prefix TEXT, path TEXT, created_at TEXT, PRIMARY KEY (prefix, path));`,
    `CREATE TABLE stored_files (prefix TEXT, path TEXT, r2_key TEXT, size INTEGER, seal_guard TEXT, uploaded_by_device_id TEXT, uploaded_at TEXT, modified_time TEXT, last_accessed_at TEXT, use_count INTEGER, etag TEXT, PRIMARY KEY (prefix, path));`,
  ];
  for (const [mesh, rows] of meshes) {
    for (const row of rows) {
      lines.push(
        `INSERT INTO files VALUES (${sql(mesh)}, ${sql(row.path)}, X'${Buffer.from(row.content).toString("hex")}', ${row.content.byteLength}, ${sql(row.modifiedTime)}, ${sql(row.etag)});`,
      );
    }
    for (const folder of FOLDERS) lines.push(`INSERT INTO folders VALUES (${sql(mesh)}, ${sql(`/MyApp${folder ? `/${folder}` : ""}`)}, '2026-12-02T00:00:00.000Z');`);
  }
  return `${lines.join("\n")}\n`;
}

/** The project's local config plus the legacy bindings, sources addressed from the repository. */
function legacyConfig(): string {
  const local = readFileSync(path.join(ROOT, "wrangler.toml"), "utf8").split("\n# ------")[0]!;
  const text = `${local
    .replace('main = "worker/index.ts"', `main = ${JSON.stringify(path.join(ROOT, "worker", "index.ts"))}`)
    .replace('migrations_dir = "migrations"', `migrations_dir = ${JSON.stringify(path.join(ROOT, "migrations"))}`)}
[[d1_databases]]
binding = "LEGACY_DB"
database_name = "upstream-legacy"
database_id = "00000000-0000-0000-0000-0000000017e6"

[[r2_buckets]]
binding = "LEGACY_FILES"
bucket_name = "upstream-legacy-files"
`;
  const file = path.join(state, "wrangler.toml");
  writeFileSync(file, text);
  return file;
}

function cli(base: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, [CLI, "migrate-upstream", ...args], {
    encoding: "utf8",
    env: { ...process.env, MESHBOX_URL: base, MESHBOX_ADMIN_TOKEN: ADMIN_TOKEN },
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

const valuesOf = (d: Device) => Object.fromEntries([...d.rows].map(([k, v]) => [k, v.value]));
const listing = async (d: Device) => (await d.listFiles(d.path("changes"))).map((f) => [f.name, f.size, f.modifiedTime]).sort();

describe("meshbox migrate-upstream (device simulator)", () => {
  it("moves what devices wrote upstream; the same devices carry on without re-bootstrapping and a new one joins from the snapshot", async () => {
    const upstream = await startWorker({ frozenSources: true });
    workers.push(upstream);
    const mesh = `mesh_${crypto.randomUUID()}`;
    const founder = device(upstream.base, mesh, "founder", true);
    await founder.connect();
    forbidBootstrap(founder);
    const alice = device(upstream.base, mesh, "alice");
    const bob = device(upstream.base, mesh, "bob");
    await alice.connect();
    await bob.connect();
    alice.write({ title: "before compaction", owner: "alice" });
    await alice.flush();
    await bob.pull();
    const compacted = await bob.compact();
    if (!compacted.ok) throw new Error(`compaction failed: ${JSON.stringify(compacted)}`);
    bob.write({ note: "after compaction" });
    await bob.flush();
    founder.write({ tag: "founder's" });
    await founder.flush();
    // Reconnecting restores whoever is behind the compaction's epoch: every device is at the
    // mesh's epoch before the move, so any snapshot fetch after it would be the move's fault.
    for (const d of [founder, alice, bob]) await d.connect();
    for (const d of [founder, alice, bob]) expect(d.epoch).toBe(compacted.epoch);
    const held = { title: "before compaction", owner: "alice", note: "after compaction", tag: "founder's" };
    for (const d of [founder, alice, bob]) expect(valuesOf(d)).toEqual(held);
    expect(await alice.loadManifest()).toBe(true);

    // A second mesh that only bootstrapped and wrote, and a third whose committed snapshot upstream lost.
    const small = `mesh_${crypto.randomUUID()}`;
    const dan = device(upstream.base, small, "dan", true);
    await dan.connect();
    dan.write({ only: "dan" });
    await dan.flush();
    const broken = `mesh_${crypto.randomUUID()}`;
    const eve = device(upstream.base, broken, "eve", true);
    await eve.connect();
    eve.write({ lost: "snapshot" });
    await eve.flush();
    const eveCompacted = await eve.compact();
    if (!eveCompacted.ok) throw new Error("eve's compaction failed");

    const legacy = new Map<string, LegacyRow[]>();
    for (const m of [mesh, small, broken]) legacy.set(m, await readBack(upstream.base, m));
    legacy.set(broken, legacy.get(broken)!.filter((r) => r.path !== eveCompacted.snapshotPath));
    const rows = legacy.get(mesh)!;
    expect(rows.map((r) => r.path)).toEqual(expect.arrayContaining([alice.path("manifest.json"), alice.path("manifest-2.json"), compacted.snapshotPath, alice.path("changes/head.json")]));
    const pointer = new TextDecoder().decode(rows.find((r) => r.path === alice.path("manifest.json"))!.content);
    const upstreamChanges = await listing(alice);
    await upstream.stop();

    const config = legacyConfig();
    const persist = path.join(state, "meshbox");
    const schema = path.join(state, "legacy.sql");
    writeFileSync(schema, legacySql(legacy));
    const filled = spawnSync(WRANGLER, ["d1", "execute", "LEGACY_DB", "--local", "--persist-to", persist, "--config", config, "--file", schema], {
      encoding: "utf8",
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
    });
    expect(filled.status, filled.stderr).toBe(0);
    const meshbox = await startWorker({ persistTo: persist, config, vars: { ADMIN_TOKEN } });
    workers.push(meshbox);

    const dry = cli(meshbox.base, "--mesh", mesh, "--dry-run");
    expect(dry.stderr).toBe("");
    expect(dry.stdout).toMatch(new RegExp(`^${mesh}  would-move  control=\\d+ objects=\\d+ stored=0 bytes=\\d+\\n$`));
    expect(dry.status).toBe(0);
    const moved = cli(meshbox.base, "--mesh", mesh);
    expect(moved.stdout).toBe(dry.stdout.replace("would-move", "moved"));
    expect(moved.status).toBe(0);

    // Every object upstream held, listed at its path with its size and modified time, and nothing else.
    const asListed = (list: { path: string; size: number; modifiedTime: string }[]) => list.map((f) => [f.path, f.size, f.modifiedTime]).sort();
    const sized = (list: LegacyRow[]) => list.map((r) => ({ path: r.path, size: r.content.byteLength, modifiedTime: r.modifiedTime }));
    const migrated = await readBack(meshbox.base, mesh);
    expect(asListed(sized(migrated))).toEqual(asListed(sized(rows)));
    for (const row of rows) expect(Buffer.from(migrated.find((m) => m.path === row.path)!.content).equals(Buffer.from(row.content)), row.path).toBe(true);

    // The same instances, local state intact, now talk to meshbox.
    const snapshotGets = new Map<Device, number>();
    for (const d of [founder, alice, bob]) {
      snapshotGets.set(d, d.getsByPath.get(compacted.snapshotPath) ?? 0);
      d.moveTo(meshbox.base);
      await d.connect();
      expect(d.generation).toBe(compacted.generation);
      expect(valuesOf(d)).toEqual(held);
      // Epoch unchanged, so no restore: the snapshot is not fetched again, let alone re-uploaded.
      expect(d.getsByPath.get(compacted.snapshotPath) ?? 0).toBe(snapshotGets.get(d));
    }
    expect(await alice.readText(alice.path("manifest.json"))).toBe(pointer);
    // Paths, sizes and modified times as upstream held them.
    expect(await listing(alice)).toEqual(upstreamChanges);

    alice.write({ title: "after the move" });
    await alice.flush();
    for (const d of [founder, bob]) {
      const pulled = await d.pull();
      expect(pulled.merged).toHaveLength(1);
      expect(d.rows.get("title")?.value).toBe("after the move");
    }
    const carol = device(meshbox.base, mesh, "carol");
    await carol.connect();
    expect(carol.generation).toBe(compacted.generation);
    expect(carol.getsByPath.get(compacted.snapshotPath)).toBe(1);
    expect(valuesOf(carol)).toEqual({ ...held, title: "after the move" });

    // --all pages through every legacy mesh (one a page): the moved one is already present, the
    // small one moves, the broken one is refused with its reason, and the exit code says so.
    const line = (m: string, status: string, tail = "") => new RegExp(`^${m}  ${status}  control=\\d+ objects=\\d+ stored=0 bytes=\\d+${tail}$`);
    const missing = `${eveCompacted.snapshotPath.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`;
    const expectAll = (out: string, smallStatus: string) => {
      const lines = out.trimEnd().split("\n");
      const expected = new Map<string, RegExp>([
        [mesh, line(mesh, "already-present")],
        [small, line(small, smallStatus)],
        [broken, line(broken, "refused", `  /MyApp/manifest-2\\.json \\(the committed generation\\) names the snapshot ${missing}, which is missing\\.`)],
      ]);
      expect(lines).toHaveLength(3);
      for (const [i, m] of [...expected.keys()].sort().entries()) expect(lines[i]).toMatch(expected.get(m)!);
    };
    const all = cli(meshbox.base, "--all");
    expectAll(all.stdout, "moved");
    expect(all.status).toBe(1);
    // A second run resumes where nothing is left: the same report, nothing moved twice.
    const again = cli(meshbox.base, "--all");
    expectAll(again.stdout, "already-present");
    expect(again.status).toBe(1);

    const danNow = device(meshbox.base, small, "dan2");
    await danNow.connect();
    expect(valuesOf(danNow)).toEqual({ only: "dan" });
    const refused = await fetch(`${meshbox.base}/io/${encodeURIComponent(broken)}/file?path=${encodeURIComponent("/MyApp/manifest.json")}`);
    expect(refused.status).toBe(404);
    await refused.arrayBuffer();
  });
});
