// The admin CLI (scripts/meshbox-cli.mjs) against the real worker under wrangler dev: every
// command, table and --json output, and the exit codes and messages of refusals.
import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWorker, type RunningWorker } from "./support/worker-process";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const cli = path.join(root, "scripts", "meshbox-cli.mjs");
const ADMIN_TOKEN = "e2e-admin-token-0123456789abcdef";

let worker: RunningWorker;
beforeAll(async () => {
  worker = await startWorker({
    vars: {
      ADMIN_TOKEN,
      SESSION_SIGNING_KEY: "e2e-signing-key-0123456789abcdef-current",
      MESH_ID_CHECKSUM_SECRET: "e2e-checksum-secret",
    },
  });
});
afterAll(async () => {
  await worker?.stop();
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with URL and token from the environment (as an operator would), unless overridden. */
function meshbox(args: string[], env: Record<string, string | undefined> = {}, target: RunningWorker = worker): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cli, ...args],
      {
        cwd: root,
        timeout: 60_000,
        env: { ...process.env, MESHBOX_URL: target.origin, MESHBOX_ADMIN_TOKEN: ADMIN_TOKEN, ...env },
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function json<T>(args: string[]): Promise<T> {
  const run = await meshbox([...args, "--json"]);
  expect(run.stderr).toBe("");
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout) as T;
}

const uniqueMesh = () => `cli-${crypto.randomUUID()}`;

async function put(mesh: string, filePath: string, body: string): Promise<number> {
  const res = await fetch(`${worker.base}/io/${mesh}/file?path=${encodeURIComponent(filePath)}`, { method: "PUT", body });
  await res.arrayBuffer();
  return res.status;
}

describe("meshbox keys", () => {
  it("creates a key (shown once, in a readable record), lists it, and revokes it", async () => {
    const created = await meshbox(["keys", "create", "--name", "phone app", "--mesh", "team-*", "--access", "readonly"]);
    expect(created.code).toBe(0);
    const key = /^key\s+(mbk_\S+)$/m.exec(created.stdout)?.[1];
    const id = /^id\s+([0-9a-f]{16})$/m.exec(created.stdout)?.[1];
    expect(key).toMatch(/^mbk_/);
    expect(id).toBeDefined();
    expect(created.stdout).toMatch(/^meshPattern\s+team-\*$/m);
    expect(created.stdout).toContain("shown only this once");

    const list = await meshbox(["keys", "list"]);
    expect(list.code).toBe(0);
    const header = list.stdout.split("\n")[0] ?? "";
    expect(header.split(/\s+/)).toEqual(["id", "name", "meshPattern", "access", "createdAt", "lastUsedAt", "revokedAt"]);
    const row = list.stdout.split("\n").find((line) => line.startsWith(id!));
    expect(row).toContain("phone app");
    expect(row).toContain("readonly");
    expect(list.stdout).not.toContain(key!);

    const revoked = await meshbox(["keys", "revoke", id!]);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toMatch(new RegExp(`^revoked key ${id} \\(phone app\\) at \\S+; sessions revoked: 0\\n$`));
    const { keys } = await json<{ keys: { id: string; revokedAt: string | null }[] }>(["keys", "list"]);
    expect(keys.find((k) => k.id === id)?.revokedAt).not.toBeNull();
  });

  it("prints the server's JSON with --json", async () => {
    const created = await json<{ id: string; key: string; access: string }>(["keys", "create", "--name", "json", "--mesh", "*"]);
    expect(created.access).toBe("full");
    expect(created.key).toContain(created.id);
  });

  it("exits 1 with the server's message when the server refuses", async () => {
    const bad = await meshbox(["keys", "create", "--name", "x", "--mesh", "not a pattern"]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe("");
    expect(bad.stderr).toBe('meshbox: 400 bad_request: meshPattern must be a mesh id, "*", or a prefix ending in "*".\n');

    const missing = await meshbox(["keys", "revoke", "ffffffffffffffff"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe("meshbox: 404 not_found: No API key has the id ffffffffffffffff.\n");
  });

  it("exits 1 with 401 for a wrong token, and takes --url/--token over the environment", async () => {
    const wrong = await meshbox(["keys", "list"], { MESHBOX_ADMIN_TOKEN: "wrong" });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toBe("meshbox: 401 unauthorized: The admin API needs Authorization: Bearer <ADMIN_TOKEN>.\n");

    const flags = await meshbox(["--url", `${worker.origin}/sync`, "--token", ADMIN_TOKEN, "keys", "list"], {
      MESHBOX_URL: "http://127.0.0.1:1",
      MESHBOX_ADMIN_TOKEN: "wrong",
    });
    expect(flags.code).toBe(0);
  });

  it("exits 2 with usage for a missing flag, an unknown command, or no server", async () => {
    const noName = await meshbox(["keys", "create", "--mesh", "*"]);
    expect(noName.code).toBe(2);
    expect(noName.stderr).toBe(
      "meshbox: missing --name\n\nusage: meshbox keys create --name NAME --mesh PATTERN [--access full|readonly] [--json]\n",
    );
    const unknown = await meshbox(["keys", "rotate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "keys rotate"');
    expect(unknown.stderr).toContain("usage: meshbox");
    const noToken = await meshbox(["keys", "list"], { MESHBOX_ADMIN_TOKEN: "" });
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/^meshbox: no admin token: set MESHBOX_ADMIN_TOKEN/);
  });

  it("refuses a misspelt flag with exit 2 and the usage line, and creates nothing", async () => {
    const before = await json<{ keys: unknown[] }>(["keys", "list"]);
    const run = await meshbox(["keys", "create", "--name", "x", "--mesh", "*", "--acess", "readonly"]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr).toBe(
      "meshbox: Unknown option '--acess'\n\nusage: meshbox keys create --name NAME --mesh PATTERN [--access full|readonly] [--json]\n",
    );
    const after = await json<{ keys: unknown[] }>(["keys", "list"]);
    expect(after.keys).toHaveLength(before.keys.length);
  });

  it("refuses extra words, a value outside an enumeration and an unknown group with exit 2", async () => {
    const extra = await meshbox(["keys", "list", "extra", "words"]);
    expect(extra.code).toBe(2);
    expect(extra.stderr).toBe("meshbox: unexpected words: extra words\n\nusage: meshbox keys list [--json]\n");
    const bogus = await meshbox(["keys", "create", "--name", "x", "--mesh", "*", "--access", "bogus"]);
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toMatch(/^meshbox: --access must be one of full, readonly \(got "bogus"\)\n\nusage: meshbox keys create /);
    const sort = await meshbox(["mesh", "list", "--sort", "size"]);
    expect(sort.code).toBe(2);
    expect(sort.stderr).toMatch(/^meshbox: --sort must be one of lastWrite, bytes, objects/);
    const group = await meshbox(["kyes", "list"]);
    expect(group.code).toBe(2);
    expect(group.stderr).toMatch(/^meshbox: unknown group "kyes"\n\nusage: meshbox /);
  });

  it("prints the package version for --version", async () => {
    const run = await meshbox(["--version"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^\d+\.\d+\.\d+\S*\n$/);
  });

  it("exits 1 when the server cannot be reached", async () => {
    const run = await meshbox(["keys", "list"], { MESHBOX_URL: "http://127.0.0.1:9" });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^meshbox: could not reach http:\/\/127\.0\.0\.1:9\/sync\/admin: /);
  });
});

describe("meshbox sessions", () => {
  it("lists a minted session (filtered by mesh) and revokes it", async () => {
    const mesh = uniqueMesh();
    const key = await json<{ key: string }>(["keys", "create", "--name", "sessions", "--mesh", mesh]);
    const minted = await fetch(`${worker.base}/auth/session`, {
      method: "POST",
      headers: { Authorization: `Bearer ${key.key}`, "Content-Type": "application/json" },
      body: JSON.stringify({ subject: "laptop" }),
    });
    expect(minted.status).toBe(201);
    const { sessionId, token } = (await minted.json()) as { sessionId: string; token: string };

    const list = await meshbox(["sessions", "list", "--mesh", mesh]);
    expect(list.code).toBe(0);
    const rows = list.stdout.trim().split("\n");
    expect(rows).toHaveLength(3);
    expect(rows[2]).toMatch(new RegExp(`^${sessionId}\\s+[0-9a-f]{16}\\s+laptop\\s+${mesh}\\s+full\\s`));

    const revoked = await meshbox(["sessions", "revoke", sessionId]);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toMatch(new RegExp(`^revoked session ${sessionId} at \\S+\\n$`));
    const { sessions } = await json<{ sessions: { jti: string; revokedAt: string | null }[] }>(["sessions", "list", "--mesh", mesh]);
    expect(sessions.find((s) => s.jti === sessionId)?.revokedAt).not.toBeNull();
    expect(token).not.toBe("");
  });

  it("says (none) when nothing matches", async () => {
    const run = await meshbox(["sessions", "list", "--mesh", uniqueMesh()]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe("(none)\n");
  });
});

describe("meshbox mesh", () => {
  it("shows stats, reconciles, and wipes only with --yes", async () => {
    const mesh = uniqueMesh();
    expect(await put(mesh, "/App/manifest-1.json", JSON.stringify({ version: 3, meshId: mesh, epoch: 1 }))).toBe(201);
    expect(await put(mesh, "/App/manifest.json", JSON.stringify({ currentGeneration: 1, file: "manifest-1.json" }))).toBe(201);
    expect(await put(mesh, "/App/other.bin", "hello")).toBe(201);

    const stats = await meshbox(["mesh", "stats", mesh]);
    expect(stats.code).toBe(0);
    expect(stats.stdout).toMatch(new RegExp(`^mesh\\s+${mesh}$`, "m"));
    // The index holds the change file; the two control objects are the hub's alone.
    expect(stats.stdout).toMatch(/^objects\s+1$/m);
    expect(stats.stdout).toMatch(/^hub\.currentGeneration\s+1$/m);
    expect(stats.stdout).toMatch(/^hub\.controlObjects\s+2$/m);

    const reconciled = await json<Record<string, unknown>>(["mesh", "reconcile", mesh]);
    expect(reconciled).toEqual({
      mesh,
      scanned: { r2: 1, hub: 2, heads: 0 },
      added: 0,
      tombstoned: 0,
      fixed: 0,
      complete: true,
      requests: 1,
    });

    const refused = await meshbox(["mesh", "wipe", mesh]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(
      `meshbox: wiping deletes every object of mesh ${mesh}; add --yes to confirm\n\nusage: meshbox mesh wipe <mesh> [--dry-run] [--yes] [--json]\n`,
    );
    expect((await json<{ objects: number }>(["mesh", "stats", mesh])).objects).toBe(1);

    const wiped = await meshbox(["mesh", "wipe", mesh, "--yes"]);
    expect(wiped.code).toBe(0);
    expect(wiped.stdout).toMatch(/^complete\s+true$/m);
    expect(wiped.stdout).toMatch(/^r2Objects\s+1$/m);
    expect(wiped.stdout).toMatch(/^hub\.controlObjects\s+2$/m);
    // A wiped mesh holds nothing, so its stats answer 404 like a mesh that never existed.
    const after = await meshbox(["mesh", "stats", mesh]);
    expect(after.code).toBe(1);
    expect(after.stderr).toMatch(/^meshbox: no such mesh: /);
  });

  it("lists meshes under a prefix page by page, and prints tenant-wide usage", async () => {
    const prefix = `cli${crypto.randomUUID().slice(0, 8)}-`;
    expect(await put(`${prefix}a`, "/App/one.bin", "1")).toBe(201);
    expect(await put(`${prefix}b`, "/App/one.bin", "12")).toBe(201);
    expect(await put(`${prefix}b`, "/App/two.bin", "123")).toBe(201);

    const first = await json<{ meshes: { mesh: string; objects: number; bytes: number }[]; nextCursor: string | null }>(
      ["mesh", "list", "--prefix", prefix, "--sort", "objects", "--limit", "1"],
    );
    expect(first.meshes.map((m) => [m.mesh, m.objects, m.bytes])).toEqual([[`${prefix}b`, 2, 5]]);
    expect(first.nextCursor).not.toBeNull();
    const table = await meshbox(["mesh", "list", "--prefix", prefix, "--sort", "objects", "--cursor", first.nextCursor ?? ""]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`^${prefix}a\\s+1\\s+1\\s`, "m"));
    expect(table.stdout).not.toContain(`${prefix}b`);

    const bad = await meshbox(["mesh", "list", "--sort", "size"]);
    expect(bad.code).toBe(2);

    const usage = await json<{ meshes: number; objects: number; bytes: { other: number } }>(["usage"]);
    expect(usage.meshes).toBeGreaterThanOrEqual(2);
    expect(usage.bytes.other).toBeGreaterThanOrEqual(6);
  });

  it("exits 1 with 400 for a malformed mesh id", async () => {
    // A word starting with "-" is a flag to a strict parser; "--" passes it as the mesh id.
    const run = await meshbox(["mesh", "stats", "--", "-bad"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^meshbox: 400 invalid_mesh_id: /);
  });
});

describe("meshbox maintenance run", () => {
  it("runs the cron work now and prints a summary", async () => {
    const run = await meshbox(["maintenance", "run"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^sessionsDeleted\s+\d+$/m);
    expect(run.stdout).toMatch(/^tombstonesPurged\s+\d+$/m);
    expect(run.stdout).toMatch(/^idleCleanup\s+off$/m);
    expect(run.stdout).toMatch(/^errors\s+0$/m);
    const report = await json<{ trigger: string; errors: unknown[] }>(["maintenance", "run"]);
    expect(report.trigger).toBe("admin");
    expect(report.errors).toEqual([]);
  });
});

describe("meshbox mesh-id issue", () => {
  it("prints a checksummed id the worker accepts", async () => {
    const run = await meshbox(["mesh-id", "issue"]);
    expect(run.code).toBe(0);
    const meshId = run.stdout.trim();
    expect(meshId).toMatch(/^[0-9a-f-]{36}\.[A-Za-z0-9_-]{11}$/);
    const health = await fetch(`${worker.base}/io/${meshId}/health`);
    expect(health.status).toBe(200);
  });
});

describe("meshbox maintenance run with idle-mesh cleanup", () => {
  // A worker of its own whose TTL is under a second, so a mesh becomes idle while the test polls.
  let idle: RunningWorker;
  beforeAll(async () => {
    idle = await startWorker({ vars: { ADMIN_TOKEN, IDLE_MESH_TTL_DAYS: "0.00001" } });
  });
  afterAll(async () => {
    await idle?.stop();
  });

  it("evicts an idle mesh; <root>/evicted.json then answers the eviction record", async () => {
    const mesh = uniqueMesh();
    const putIdle = async (filePath: string, body: string) => {
      const res = await fetch(`${idle.base}/io/${mesh}/file?path=${encodeURIComponent(filePath)}`, { method: "PUT", body });
      await res.arrayBuffer();
      return res.status;
    };
    expect(await putIdle("/App/manifest-1.json", JSON.stringify({ version: 3, meshId: mesh, epoch: 1 }))).toBe(201);
    expect(await putIdle("/App/manifest.json", JSON.stringify({ currentGeneration: 1, file: "manifest-1.json" }))).toBe(201);
    expect(await putIdle("/App/other.bin", "bytes")).toBe(201);

    const deadline = Date.now() + 30_000;
    let evicted: { mesh: string; roots: string[]; recorded: boolean } | undefined;
    while (evicted === undefined && Date.now() < deadline) {
      const run = await meshbox(["maintenance", "run", "--json"], {}, idle);
      expect(run.code).toBe(0);
      const report = JSON.parse(run.stdout) as { idleCleanup: { enabled: boolean; evicted?: { mesh: string; roots: string[]; recorded: boolean }[] } };
      expect(report.idleCleanup.enabled).toBe(true);
      evicted = report.idleCleanup.evicted?.find((e) => e.mesh === mesh);
      if (evicted === undefined) await new Promise((r) => setTimeout(r, 250));
    }
    expect(evicted).toMatchObject({ mesh, roots: ["/App"], recorded: true });

    const record = await fetch(`${idle.base}/io/${mesh}/file?path=/App/evicted.json`);
    expect(record.status).toBe(200);
    expect(await record.json()).toMatchObject({ evicted: true, reason: "idle", mesh, root: "/App" });
    const manifest = await fetch(`${idle.base}/io/${mesh}/file?path=/App/manifest.json`);
    await manifest.arrayBuffer();
    expect(manifest.status).toBe(404);
    const stats = await meshbox(["mesh", "stats", mesh], {}, idle);
    expect(stats.stdout).toMatch(/^evictedRoots\s+\/App$/m);
    expect(stats.stdout).toMatch(/^objects\s+0$/m);
  });
});

describe("request logs", () => {
  it("writes one JSON line per request with route, mesh, status and sizes, and never a token or query string", async () => {
    const mesh = uniqueMesh();
    expect(await put(mesh, "/App/log-probe.bin", "12345678")).toBe(201);
    const deadline = Date.now() + 10_000;
    let line: Record<string, unknown> | undefined;
    while (line === undefined && Date.now() < deadline) {
      line = worker
        .output()
        .split("\n")
        .filter((l) => l.trim().startsWith("{"))
        .map((l) => {
          try {
            return JSON.parse(l.trim()) as Record<string, unknown>;
          } catch {
            return {};
          }
        })
        .find((l) => l.msg === "request" && l.mesh === mesh && l.method === "PUT");
      if (line === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    expect(line).toEqual({
      level: "info",
      msg: "request",
      requestId: expect.any(String),
      method: "PUT",
      route: "/sync/io/:mesh/file",
      mesh,
      status: 201,
      bytesIn: 8,
      bytesOut: expect.any(Number),
      ms: expect.any(Number),
    });
    const output = worker.output();
    expect(output).not.toContain(ADMIN_TOKEN);
    expect(output).not.toContain("log-probe.bin");
    expect(output).not.toContain("?path=");
  });
});
