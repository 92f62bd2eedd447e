#!/usr/bin/env node
// `npm run deploy -- --env <tenant> [more wrangler deploy flags]`: deploys one tenant's Worker.
// Refuses to run without --env, because the top-level section of wrangler.toml is the local
// development environment (open access, placeholder database id) and must never be deployed.
// Every argument reaches `wrangler deploy` unchanged.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
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

// A database_id of zeros is the template's placeholder: wrangler would build it (the dry run passes)
// and only fail, or bind nothing, at deploy time. Refuse before anything is uploaded.
const configArg = args.indexOf("--config");
const configPath = path.resolve(root, configArg >= 0 ? args[configArg + 1] : "wrangler.toml");
const escaped = tenant.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const block = new RegExp(`\\[\\[env\\.${escaped}\\.d1_databases\\]\\][^\\[]*?database_id\\s*=\\s*"([^"]*)"`, "s");
const found = existsSync(configPath) ? block.exec(readFileSync(configPath, "utf8")) : null;
if (found && /^0{8}-0{4}-0{4}-0{4}-/.test(found[1])) {
  console.error(
    `meshbox deploy: [[env.${tenant}.d1_databases]] still has the placeholder database_id ${found[1]}.\n` +
      `Create the database (\`npx wrangler d1 create meshbox-${tenant}\`) and paste the id it prints, then deploy again.`,
  );
  process.exit(1);
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
