// The `meshbox shards` CLI against the real worker under `wrangler dev` with 4 local D1 index
// shards: devices write to meshes spread over the shards, an operator reads the status, moves a
// mesh while its files stay listed, and asks for a rebalance plan. The config is the project's
// wrangler.toml plus the four INDEX_DB_<i> bindings, written to a temporary file.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWorker, type RunningWorker } from "./support/worker-process";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const cli = path.join(root, "scripts", "meshbox-cli.mjs");
const ADMIN_TOKEN = "e2e-admin-token-0123456789abcdef";
const SHARDS = [0, 1, 2, 3];

let worker: RunningWorker;
let configDir: string;

/** wrangler.toml's top level (everything before the first [env.*]) with absolute paths, plus the shards. */
function shardedConfig(): string {
  const base = readFileSync(path.join(root, "wrangler.toml"), "utf8").split(/^\[env\./m)[0]!;
  const absolute = base
    .replace(/^main = "(.*)"$/m, (_m, main: string) => `main = "${path.join(root, main)}"`)
    .replace(/^migrations_dir = "(.*)"$/m, (_m, dir: string) => `migrations_dir = "${path.join(root, dir)}"`);
  const shards = SHARDS.map(
    (i) => `
[[d1_databases]]
binding = "INDEX_DB_${i}"
database_name = "meshbox-local-index-${i}"
database_id = "00000000-0000-0000-0000-00000000000${i + 1}"
migrations_dir = "${path.join(root, "migrations")}"
`,
  ).join("");
  // [vars] ends the top level's tables; bindings must come before it in TOML, so put them first.
  const at = absolute.search(/^\[vars\]/m);
  return `${absolute.slice(0, at)}${shards}\n${absolute.slice(at)}`;
}

beforeAll(async () => {
  configDir = mkdtempSync(path.join(tmpdir(), "meshbox-shards-config-"));
  const config = path.join(configDir, "wrangler.toml");
  writeFileSync(config, shardedConfig());
  worker = await startWorker({ vars: { ADMIN_TOKEN }, config, migrate: ["DB", ...SHARDS.map((i) => `INDEX_DB_${i}`)] });
});
afterAll(async () => {
  await worker?.stop();
  if (configDir !== undefined) rmSync(configDir, { recursive: true, force: true });
});

function meshbox(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cli, ...args],
      { cwd: root, timeout: 60_000, env: { ...process.env, MESHBOX_URL: worker.origin, MESHBOX_ADMIN_TOKEN: ADMIN_TOKEN } },
      (error, stdout, stderr) => resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr }),
    );
  });
}

function changeName(n: number): string {
  return `${String(1_700_000_000_000 + n).padStart(15, "0")}-0000-devA-chg_${crypto.randomUUID()}.json`;
}

async function put(mesh: string, name: string): Promise<number> {
  const res = await fetch(`${worker.base}/io/${mesh}/file?path=${encodeURIComponent(`/App/changes/${name}`)}`, { method: "PUT", body: "{}" });
  await res.arrayBuffer();
  return res.status;
}

async function names(mesh: string): Promise<string[]> {
  const res = await fetch(`${worker.base}/io/${mesh}/list-files`, {
    method: "POST",
    body: JSON.stringify({ path: "/App/changes" }),
    headers: { "Content-Type": "application/json" },
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { files: { name: string }[] }).files.map((f) => f.name).sort();
}

interface Status {
  count: number;
  shards: { shard: number; binding: string; meshes: number; objects: number; available: boolean }[];
  moving: unknown[];
}

describe("meshbox shards (4 local index shards)", () => {
  it("shows meshes spread over the shards, moves one with its files, and plans a rebalance", async () => {
    const meshes = Array.from({ length: 8 }, () => `shards-${crypto.randomUUID()}`);
    const written = new Map<string, string[]>();
    for (const mesh of meshes) {
      const files = [changeName(1), changeName(2)];
      for (const f of files) expect(await put(mesh, f)).toBe(201);
      written.set(mesh, files.sort());
    }

    const status = await meshbox(["shards", "status", "--json"]);
    expect(status.code).toBe(0);
    const parsed = JSON.parse(status.stdout) as Status;
    expect(parsed.count).toBe(4);
    expect(parsed.shards.every((s) => s.available)).toBe(true);
    expect(parsed.shards.reduce((a, s) => a + s.meshes, 0)).toBe(meshes.length);
    expect(parsed.shards.filter((s) => s.meshes > 0).length).toBeGreaterThanOrEqual(2);
    const table = await meshbox(["shards", "status"]);
    expect(table.stdout).toMatch(/INDEX_DB_3/);

    const mesh = meshes[0]!;
    const moved = await meshbox(["shards", "move", mesh, "3", "--json"]);
    const report = JSON.parse(moved.stdout.trim() === "" ? "{}" : moved.stdout) as { from?: number; to?: number; rows?: number };
    if (moved.code !== 0) {
      // Already on shard 3: a move there is refused (409), and one elsewhere goes through.
      expect(moved.stderr).toMatch(/already on shard 3/);
      const again = await meshbox(["shards", "move", mesh, "0"]);
      expect(again.code).toBe(0);
      expect(again.stdout).toMatch(/moved .* shard 3 → 0/);
    } else {
      expect(report.to).toBe(3);
      expect(report.rows).toBeGreaterThan(0);
    }
    expect(await names(mesh)).toEqual(written.get(mesh));
    expect(await put(mesh, changeName(3))).toBe(201);
    expect((await names(mesh)).length).toBe(3);

    const plan = await meshbox(["shards", "rebalance", "--dry-run", "--json"]);
    expect(plan.code).toBe(0);
    expect((JSON.parse(plan.stdout) as { dryRun: boolean }).dryRun).toBe(true);
    const bad = await meshbox(["shards", "move", mesh, "7"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/shard must be an integer from 0 to 3/);
  });
});
