#!/usr/bin/env node
// meshbox CLI: `meshbox [--url URL] [--token TOKEN] <group> <command> [flags]`. This file only
// dispatches: each group is a module under scripts/cli/ (summary, usage, run(argv, io) → exit
// code), loaded on demand. Plain Node ESM, no dependencies.
// The URL and token come from MESHBOX_URL and MESHBOX_ADMIN_TOKEN (a token on the command line is
// visible to other local users in the process list; prefer the variable).
// Exit codes: 0 ok, 1 the server refused or could not be reached, 2 bad usage.
import { readFileSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Every group, loaded only when called. Adding a group = one line here + scripts/cli/<group>.mjs. */
export const GROUPS = {
  keys: () => import("./cli/keys.mjs"),
  sessions: () => import("./cli/sessions.mjs"),
  mesh: () => import("./cli/mesh.mjs"),
  usage: () => import("./cli/usage.mjs"),
  maintenance: () => import("./cli/maintenance.mjs"),
  "mesh-id": () => import("./cli/mesh-id.mjs"),
  "migrate-upstream": () => import("./cli/migrate-upstream.mjs"),
  grants: () => import("./cli/grants.mjs"),
  shards: () => import("./cli/shards.mjs"),
  init: () => import("./cli/init.mjs"),
  tenant: () => import("./cli/tenant.mjs"),
};

const OPTIONS = `options (before the group):
  --url URL      the Worker's URL, e.g. https://meshbox-acme.example.workers.dev (the mount
                 prefix /sync is added when the URL has no path)
                 [env MESHBOX_URL, default http://127.0.0.1:8787/sync]
  --token TOKEN  the tenant's ADMIN_TOKEN                          [env MESHBOX_ADMIN_TOKEN]
  --version      the CLI's version
  --help         this text; \`meshbox <group> --help\` for one group

Most commands take --json to print the server's JSON answer instead of a table.
A mesh PATTERN is an exact mesh id, "*" (every mesh), or a prefix ending in "*".`;

async function topUsage() {
  const lines = ["usage: meshbox [--url URL] [--token TOKEN] <group> <command> [flags]", "", "groups:"];
  const width = Math.max(...Object.keys(GROUPS).map((g) => g.length));
  for (const [name, load] of Object.entries(GROUPS)) {
    const group = await load();
    lines.push(`  ${name.padEnd(width)}  ${group.summary}`);
  }
  lines.push("", "commands:");
  for (const load of Object.values(GROUPS)) {
    const group = await load();
    for (const line of group.usage.split("\n")) if (line.trim() !== "") lines.push(`  ${line.trim()}`);
  }
  lines.push("", OPTIONS);
  return lines.join("\n");
}

function version() {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  return pkg.version;
}

const VALUE_OPTIONS = { "--url": "MESHBOX_URL", "--token": "MESHBOX_ADMIN_TOKEN" };

/** Runs the CLI; resolves to the exit code. `io` defaults to the process's streams. */
export async function main(argv, io = processIo()) {
  const env = { ...io.env };
  let i = 0;
  // Global options come before the group word; the group parses everything after it.
  for (; i < argv.length && argv[i].startsWith("-"); i++) {
    const arg = argv[i];
    if (arg === "--help" || arg === "-h") {
      io.stdout.write(`${await topUsage()}\n`);
      return 0;
    }
    if (arg === "--version" || arg === "-V") {
      io.stdout.write(`${version()}\n`);
      return 0;
    }
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg : arg.slice(0, eq);
    if (!Object.hasOwn(VALUE_OPTIONS, name)) {
      io.stderr.write(`meshbox: unknown option ${name}\n\n${await topUsage()}\n`);
      return 2;
    }
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined || value === "") {
      io.stderr.write(`meshbox: ${name} needs a value\n\n${await topUsage()}\n`);
      return 2;
    }
    env[VALUE_OPTIONS[name]] = value;
  }
  const groupName = argv[i];
  if (groupName === undefined || !Object.hasOwn(GROUPS, groupName)) {
    const why = groupName === undefined ? "which group?" : `unknown group "${groupName}"`;
    io.stderr.write(`meshbox: ${why}\n\n${await topUsage()}\n`);
    return 2;
  }
  const group = await GROUPS[groupName]();
  try {
    return await group.run(argv.slice(i + 1), { ...io, env });
  } catch (err) {
    // Groups resolve to exit codes; anything thrown past them is one line and a failure.
    io.stderr.write(`meshbox: ${err?.message ?? err}\n`);
    return 1;
  }
}

function processIo() {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    isTTY: Boolean(process.stdout.isTTY),
  };
}

// Run only when executed (npm exec meshbox / node scripts/meshbox-cli.mjs), not when imported.
const invoked = process.argv[1] ? realpathSync(process.argv[1]) : "";
if (invoked === realpathSync(fileURLToPath(import.meta.url))) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
