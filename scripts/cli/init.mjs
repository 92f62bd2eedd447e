// `meshbox init <dir> [--name NAME]`: scaffolds a tenant project outside this repository, a Worker
// that uses the @meshbox-sync/server package (templates.mjs), so a tenant upgrades by bumping a
// dependency instead of merging upstream into a fork.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { CommandError, formatUsage, parseCommand, reportError, UsageError } from "./args.mjs";
import { tenantFiles } from "./templates.mjs";

export const summary = "scaffold a tenant project (its own Worker using @meshbox-sync/server)";

export const usage = `meshbox init <dir> [--name NAME]`;

const HELP = `${formatUsage(usage)}

Writes wrangler.toml, src/index.ts, package.json, tsconfig.json, .gitignore and README.md into
<dir> (created if missing; refused when it holds anything). NAME, by default the directory's name,
names the Worker, its R2 bucket and its D1 database: lowercase letters, digits and "-".
Next: cd <dir> && npm install && npx meshbox tenant create`;

const NAME = /^[a-z0-9][a-z0-9-]{0,40}$/;

const ownPackage = () => JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));

export async function run(argv, io) {
  try {
    const parsed = parseCommand(argv, { options: { name: { type: "string" } }, positionals: ["<dir>"] });
    if (parsed.help) {
      io.stdout.write(`${HELP}\n`);
      return 0;
    }
    const dir = path.resolve(io.cwd ?? process.cwd(), parsed.positionals[0]);
    const name = parsed.values.name ?? path.basename(dir).toLowerCase();
    if (!NAME.test(name)) {
      const from = parsed.values.name === undefined ? `the directory's name "${name}" is not usable as one; pass --name` : `got "${name}"`;
      throw new UsageError(`a tenant name is lowercase letters, digits and "-" (at most 41), ${from}`);
    }
    if (existsSync(dir)) {
      if (!statSync(dir).isDirectory()) throw new CommandError(`${dir} exists and is not a directory`);
      if (readdirSync(dir).length > 0) throw new CommandError(`${dir} is not empty; init writes only into an empty or new directory`);
    }
    const pkg = ownPackage();
    const files = tenantFiles({
      name,
      meshboxVersion: pkg.version,
      wranglerVersion: pkg.devDependencies.wrangler,
      workersTypesVersion: pkg.devDependencies["@cloudflare/workers-types"],
      typescriptVersion: pkg.devDependencies.typescript,
    });
    for (const [relative, text] of Object.entries(files)) {
      const target = path.join(dir, relative);
      mkdirSync(path.dirname(target), { recursive: true });
      writeFileSync(target, text, { flag: "wx" });
    }
    if (parsed.values.json) {
      io.stdout.write(`${JSON.stringify({ dir, name, files: Object.keys(files) })}\n`);
    } else {
      io.stdout.write(
        `Created tenant "${name}" in ${dir}:\n${Object.keys(files).map((f) => `  ${f}\n`).join("")}\n` +
          `Next:\n  cd ${JSON.stringify(dir)}\n  npm install\n  npx wrangler login\n  npx meshbox tenant create     # R2 bucket + D1 database, writes the database_id\n`,
      );
    }
    return 0;
  } catch (err) {
    return reportError(err, usage, io);
  }
}
