#!/usr/bin/env node
// `npm run dev [-- wrangler dev flags]`: applies the D1 migrations to the local database (and to
// every index shard INDEX_DB_<i> the config binds, e.g. `-- --env shards`), then
// runs `wrangler dev` on 127.0.0.1 with local R2, D1 and Durable Objects (no account needed).
// Flags after `--` reach `wrangler dev` unchanged (--port, --ip, --var NAME:VALUE, --env, ...).
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

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

const migrate = spawnSync(wrangler, ["d1", "migrations", "apply", "DB", "--local", ...shared], {
  cwd: root,
  stdio: ["ignore", "inherit", "inherit"],
  env: childEnv,
});
if (migrate.status !== 0) {
  console.error("meshbox: applying the local D1 migrations failed; see the output above.");
  process.exit(migrate.status ?? 1);
}

// Index shards (README "Index shards"): the same migrations for each INDEX_DB_<i> the chosen
// environment of the (TOML) config binds; tables under [env.<name>] belong to that environment.
function shardBindings(configPath, envName) {
  let text;
  try {
    text = readFileSync(configPath, "utf8");
  } catch {
    return [];
  }
  const found = new Set();
  let section = null; // null: top level; else the environment's name
  for (const line of text.split("\n")) {
    const header = /^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*$/.exec(line);
    if (header) {
      const env = /^env\.([^.]+)/.exec(header[1]);
      section = env ? env[1] : null;
      continue;
    }
    const binding = /^\s*binding\s*=\s*"(INDEX_DB_\d+)"/.exec(line);
    if (binding && section === (envName ?? null)) found.add(binding[1]);
  }
  return [...found].sort((a, b) => Number(a.slice(9)) - Number(b.slice(9)));
}

for (const binding of shardBindings(path.resolve(root, flagValue("--config") ?? "wrangler.toml"), flagValue("--env"))) {
  const applied = spawnSync(wrangler, ["d1", "migrations", "apply", binding, "--local", ...shared], {
    cwd: root,
    stdio: ["ignore", "inherit", "inherit"],
    env: childEnv,
  });
  if (applied.status !== 0) {
    console.error(`meshbox: applying the local D1 migrations to ${binding} failed; see the output above.`);
    process.exit(applied.status ?? 1);
  }
}

const devArgs = ["dev", ...args];
if (flagValue("--ip") === undefined) devArgs.push("--ip", "127.0.0.1");
const dev = spawn(wrangler, devArgs, { cwd: root, stdio: "inherit", env: childEnv });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => dev.kill(signal));
dev.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
