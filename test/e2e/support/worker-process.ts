// Starts the real meshbox Worker with `wrangler dev` (workerd with local R2, D1 and Durable
// Objects) on 127.0.0.1, in a fresh state directory with the D1 migrations applied, and stops it.
// Used by the end-to-end tests and the benchmarks to drive meshbox exactly as devices do.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const wrangler = path.join(root, "node_modules", ".bin", "wrangler");

export interface RunningWorker {
  /** e.g. http://127.0.0.1:43123 (no trailing slash, no mount prefix). */
  origin: string;
  /** `${origin}/sync` */
  base: string;
  port: number;
  /** Where `wrangler dev` serves the worker's DevTools inspector (CPU profiles in bench/profile.mjs). */
  inspectorPort: number;
  /** Process id of the `wrangler dev` process (workerd runs as its descendant). */
  pid: number | undefined;
  /** Everything the worker printed so far (logs are JSON lines). */
  output(): string;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Extra vars, passed as `--var NAME:VALUE`. */
  vars?: Record<string, string>;
  /** Keep state in this directory instead of a fresh temporary one. */
  persistTo?: string;
  /** How long to wait for /sync/health (ms). */
  readyTimeoutMs?: number;
  /**
   * Run a copy of the sources taken now, so that edits to the working tree do not hot-reload the
   * worker mid-run (`wrangler dev` watches its sources and restarts on change). Used by the bench.
   */
  frozenSources?: boolean;
  /**
   * Another wrangler config (path from the repository root), e.g. the bench's floor Worker or its
   * counting build; its D1 migrations are applied the same way. Default: the project's wrangler.toml.
   */
  config?: string;
  /** Path (from the origin) that answers 200 once the worker is up. Default /sync/health. */
  readyPath?: string;
  /** The D1 bindings the migrations are applied to. Default ["DB"]; index shards add INDEX_DB_<i>. */
  migrate?: string[];
}

/** What `wrangler dev` needs to build and run the worker. */
const SOURCES = ["worker", "durable-objects", "migrations", "wrangler.toml", "package.json", "tsconfig.json", "bench"];

function freezeSources(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "meshbox-src-"));
  for (const entry of SOURCES) {
    cpSync(path.join(root, entry), path.join(dir, entry), { recursive: true, filter: (from) => !from.startsWith(path.join(root, "bench", "results")) });
  }
  symlinkSync(path.join(root, "node_modules"), path.join(dir, "node_modules"), "dir");
  return dir;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function startWorker(options: StartOptions = {}): Promise<RunningWorker> {
  const ownState = options.persistTo === undefined;
  const cwd = options.frozenSources ? freezeSources() : root;
  const persistTo = options.persistTo ?? mkdtempSync(path.join(tmpdir(), "meshbox-e2e-"));
  const env = { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" };
  const configArgs = options.config === undefined ? [] : ["--config", options.config];

  for (const binding of options.migrate ?? ["DB"]) {
    const migrate = spawnSync(wrangler, ["d1", "migrations", "apply", binding, "--local", "--persist-to", persistTo, ...configArgs], {
      cwd,
      env,
      encoding: "utf8",
    });
    if (migrate.status !== 0) {
      if (cwd !== root) rmSync(cwd, { recursive: true, force: true });
      if (ownState) rmSync(persistTo, { recursive: true, force: true });
      throw new Error(`wrangler d1 migrations apply ${binding} failed:\n${migrate.stdout}\n${migrate.stderr}`);
    }
  }

  const port = await freePort();
  const inspectorPort = await freePort();
  const args = [
    "dev",
    "--ip", "127.0.0.1",
    "--port", String(port),
    "--inspector-port", String(inspectorPort),
    "--persist-to", persistTo,
    "--show-interactive-dev-session=false",
    ...configArgs,
  ];
  for (const [name, value] of Object.entries(options.vars ?? {})) args.push("--var", `${name}:${value}`);

  const child: ChildProcess = spawn(wrangler, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const origin = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  let ready = false;
  while (Date.now() < deadline && child.exitCode === null) {
    try {
      const res = await fetch(`${origin}${options.readyPath ?? "/sync/health"}`);
      if (res.ok) {
        ready = true;
        break;
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }

  const stop = async () => {
    if (child.exitCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    if (ownState) rmSync(persistTo, { recursive: true, force: true });
    if (cwd !== root) rmSync(cwd, { recursive: true, force: true });
  };

  if (!ready) {
    await stop();
    throw new Error(`wrangler dev did not become ready on ${origin}:\n${output}`);
  }
  return { origin, base: `${origin}/sync`, port, inspectorPort, pid: child.pid, output: () => output, stop };
}
