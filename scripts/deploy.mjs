#!/usr/bin/env node
// `npm run deploy -- --env <tenant> [more wrangler deploy flags]`: deploys one tenant's Worker.
// Refuses to run without --env, because the top-level section of wrangler.toml is the local
// development environment (open access, placeholder database id) and must never be deployed.
// Every argument reaches `wrangler deploy` unchanged.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const args = process.argv.slice(2);

function envName(argv) {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--env" || argv[i] === "-e") return argv[i + 1];
    if (argv[i].startsWith("--env=")) return argv[i].slice("--env=".length);
  }
  return undefined;
}

const tenant = envName(args);
if (!tenant || tenant.startsWith("-")) {
  console.error(
    "meshbox deploy: name the tenant, e.g. `npm run deploy -- --env example`.\n" +
      "The top-level wrangler.toml section is local development only and is never deployed.",
  );
  process.exit(2);
}

const local = path.join(root, "node_modules", ".bin", "wrangler");
const wrangler = existsSync(local) ? local : "wrangler";
const child = spawn(wrangler, ["deploy", ...args], { cwd: root, stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("error", (err) => {
  console.error(`meshbox deploy: could not start wrangler: ${err.message}`);
  process.exit(1);
});
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
