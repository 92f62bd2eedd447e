#!/usr/bin/env node
// `npm run dev [-- wrangler dev flags]`: applies the D1 migrations to every local database the
// chosen environment binds (DB, and INDEX_DB_0..N-1 with `--env shards`), then runs `wrangler dev`
// on 127.0.0.1 with local R2, D1 and Durable Objects (no account needed).
// Flags after `--` reach `wrangler dev` unchanged (--port, --ip, --var NAME:VALUE, --env, ...).
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { BindingsError, d1BindingsOf } from "./d1-bindings.mjs";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const wrangler = path.join(root, "node_modules", ".bin", "wrangler");
const args = process.argv.slice(2);
const childEnv = { ...process.env, WRANGLER_SEND_METRICS: "false" };

// The migrations go where `wrangler dev` will look: same --env and --persist-to.
function flagValue(name) {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === name) return args[i + 1];
    if (args[i].startsWith(`${name}=`)) return args[i].slice(name.length + 1);
  }
  return undefined;
}
const shared = [];
for (const name of ["--env", "--persist-to", "--config"]) {
  const value = flagValue(name);
  if (value !== undefined) shared.push(name, value);
}

// wrangler resolves --config against its working directory, which is the repository root here.
const configPath = path.resolve(root, flagValue("--config") ?? "wrangler.toml");
const env = flagValue("--env");
let bindings;
try {
  bindings = d1BindingsOf(readFileSync(configPath, "utf8"), env);
} catch (err) {
  if (!(err instanceof BindingsError)) throw err;
  console.error(`meshbox: reading the D1 bindings of ${configPath}: ${err.message}`);
  process.exit(1);
}
if (bindings.length === 0) {
  console.error(`meshbox: ${configPath}${env === undefined ? "" : ` [env.${env}]`} binds no D1 database; meshbox needs at least DB.`);
  process.exit(1);
}

for (const { binding } of bindings) {
  const migrate = spawnSync(wrangler, ["d1", "migrations", "apply", binding, "--local", ...shared], {
    cwd: root,
    stdio: ["ignore", "inherit", "inherit"],
    env: childEnv,
  });
  if (migrate.status !== 0) {
    console.error(`meshbox: applying the local D1 migrations to ${binding} failed; see the output above.`);
    process.exit(migrate.status ?? 1);
  }
}

const devArgs = ["dev", ...args];
if (flagValue("--ip") === undefined) devArgs.push("--ip", "127.0.0.1");
const dev = spawn(wrangler, devArgs, { cwd: root, stdio: "inherit", env: childEnv });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => dev.kill(signal));
dev.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
