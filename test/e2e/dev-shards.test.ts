// `npm run dev -- --env shards`: the local environment with four index shards comes up with the
// migrations applied to all five of its D1 databases and devices sync through it, each mesh's
// index in one database; and the wrangler.toml reader behind it finds every binding of an
// environment and refuses what it cannot read.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BindingsError, d1BindingsOf as bindingsOf } from "../../scripts/d1-bindings.mjs";
import { Device } from "./support/device";
import { freePort } from "./support/worker-process";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const wrangler = path.join(root, "node_modules", ".bin", "wrangler");
const SHARD_BINDINGS = ["DB", "INDEX_DB_0", "INDEX_DB_1", "INDEX_DB_2", "INDEX_DB_3"];
const MIGRATIONS = readdirSync(path.join(root, "migrations")).filter((f) => f.endsWith(".sql")).sort();
const READY_MS = 90_000;

/** Rows of one statement against a local D1 database of the shards environment. */
function query(persistTo: string, binding: string, sql: string): Record<string, unknown>[] {
  const run = spawnSync(wrangler, ["d1", "execute", binding, "--local", "--env", "shards", "--persist-to", persistTo, "--command", sql, "--json"], {
    cwd: root,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
    encoding: "utf8",
    timeout: 60_000,
  });
  if (run.status !== 0) throw new Error(`wrangler d1 execute ${binding} failed:\n${run.stdout}\n${run.stderr}`);
  return (JSON.parse(run.stdout) as { results: Record<string, unknown>[] }[])[0]?.results ?? [];
}

describe("npm run dev -- --env shards", () => {
  let dev: ChildProcess;
  let persistTo: string;
  let origin: string;
  let output = "";
  let exited: Promise<void>;

  beforeAll(async () => {
    persistTo = mkdtempSync(path.join(tmpdir(), "meshbox-shards-"));
    const port = await freePort();
    const inspectorPort = await freePort();
    origin = `http://127.0.0.1:${port}`;
    // Its own process group, so the stop below reaches wrangler and workerd too.
    dev = spawn(
      process.execPath,
      [
        "scripts/dev.mjs",
        "--env", "shards",
        "--port", String(port),
        "--inspector-port", String(inspectorPort),
        "--persist-to", persistTo,
        "--show-interactive-dev-session=false",
      ],
      { cwd: root, env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" }, stdio: ["ignore", "pipe", "pipe"], detached: true },
    );
    dev.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    dev.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    exited = new Promise((resolve) => dev.once("exit", () => resolve()));
    const deadline = Date.now() + READY_MS;
    while (Date.now() < deadline && dev.exitCode === null) {
      try {
        if ((await fetch(`${origin}/sync/health`)).ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`npm run dev -- --env shards did not answer /sync/health within ${READY_MS} ms:\n${output}`);
  }, READY_MS + 30_000);

  afterAll(async () => {
    if (dev?.pid !== undefined && dev.exitCode === null) {
      process.kill(-dev.pid, "SIGTERM");
      const timer = setTimeout(() => process.kill(-dev.pid!, "SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    if (persistTo) rmSync(persistTo, { recursive: true, force: true });
  });

  it("serves /sync/health on 127.0.0.1 in open mode", async () => {
    const res = await fetch(`${origin}/sync/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, service: "meshbox", auth: ["open"] });
  });

  it("syncs devices, and keeps each mesh's index rows in exactly one of the five databases", async () => {
    const meshes = Array.from({ length: 3 }, (_, i) => `dev_shards_${i}_${randomUUID()}`);
    for (const mesh of meshes) {
      const a = new Device({ base: `${origin}/sync`, mesh, deviceId: "dev_a" });
      const b = new Device({ base: `${origin}/sync`, mesh, deviceId: "dev_b" });
      await a.connect();
      await b.connect();
      const written: string[] = [];
      for (let n = 0; n < 3; n++) {
        for (const d of [a, b]) {
          written.push(d.write({ [`row-${n}`]: `${d.deviceId}:${n}` }));
          await d.flush();
        }
      }
      for (const d of [a, b]) {
        await d.pull();
        expect([...d.merged].sort()).toEqual([...written].sort());
        await d.close();
      }
    }
    for (const mesh of meshes) {
      const holding = SHARD_BINDINGS.filter((binding) => Number(query(persistTo, binding, `SELECT count(*) AS n FROM objects WHERE mesh = '${mesh}'`)[0]?.n) > 0);
      expect(holding, mesh).toHaveLength(1);
      // With index shards bound, DB keeps only the directory and auth state.
      expect(holding[0], mesh).not.toBe("DB");
    }
  });

  // After the device test: these checks spawn wrangler for ~15 s, long enough for the dev server
  // to drop the idle keep-alive connection that the next fetch would otherwise reuse and fail on.
  it("applied every migration to DB and to each of the four index shards", () => {
    for (const binding of SHARD_BINDINGS) {
      const applied = query(persistTo, binding, "SELECT name FROM d1_migrations ORDER BY id").map((r) => r.name);
      expect(applied, binding).toEqual(MIGRATIONS);
      const tables = query(persistTo, binding, "SELECT name FROM sqlite_master WHERE type = 'table'").map((r) => r.name);
      expect(tables, binding).toEqual(expect.arrayContaining(["objects", "indexed_folders", "mesh_usage", "mesh_hourly"]));
    }
  });

  it("keeps the five databases apart: a row written to one shard is in no other", () => {
    query(persistTo, "INDEX_DB_2", "INSERT INTO indexed_folders (mesh, folder, indexed_at) VALUES ('dev_shards_probe', '/', 1)");
    for (const binding of SHARD_BINDINGS) {
      const rows = query(persistTo, binding, "SELECT mesh FROM indexed_folders WHERE mesh = 'dev_shards_probe'");
      expect(rows.length, binding).toBe(binding === "INDEX_DB_2" ? 1 : 0);
    }
  });
});

describe("the D1 bindings reader behind npm run dev", () => {
  const toml = readFileSync(path.join(root, "wrangler.toml"), "utf8");

  it("finds DB alone at the top level and in a tenant environment, and the five databases of [env.shards]", () => {
    expect(bindingsOf(toml).map((b) => b.binding)).toEqual(["DB"]);
    expect(bindingsOf(toml, "example").map((b) => b.binding)).toEqual(["DB"]);
    const shards = bindingsOf(toml, "shards");
    expect(shards.map((b) => b.binding)).toEqual(SHARD_BINDINGS);
    expect(new Set(shards.map((b) => b.databaseId)).size).toBe(5);
    expect(new Set(shards.map((b) => b.databaseName)).size).toBe(5);
    expect(shards.every((b) => b.migrationsDir === "migrations")).toBe(true);
  });

  it("answers no bindings for an environment the file does not have", () => {
    expect(bindingsOf(toml, "missing")).toEqual([]);
  });

  it("reads comments, a # inside a string, and a missing migrations_dir as wrangler's default", () => {
    const text = '# top\n[[d1_databases]] # the one\nbinding = "DB" # why\ndatabase_name = "a#b"\n';
    expect(bindingsOf(text)).toEqual([{ binding: "DB", databaseName: "a#b", databaseId: undefined, migrationsDir: "migrations" }]);
  });

  it("refuses inline d1_databases, non-string values, a repeated binding and a bad header rather than miss a database", () => {
    const refused = [
      ["d1_databases = [{ binding = \"DB\" }]", undefined],
      ["[env.x]\nd1_databases = []", "x"],
      ["[[env.x.d1_databases]]\nbinding = DB", "x"],
      ['[[d1_databases]]\nbinding = "A"\n[[d1_databases]]\nbinding = "A"', undefined],
      ['[[d1_databases]\nbinding = "A"', undefined],
      ['[[d1_databases]]\ndatabase_name = "no binding"', undefined],
    ] as const;
    for (const [text, env] of refused) expect(() => bindingsOf(text, env), text).toThrow(BindingsError);
  });
});
