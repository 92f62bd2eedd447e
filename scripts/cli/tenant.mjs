// `meshbox tenant create|check`: a tenant's Cloudflare resources from its wrangler.toml. `create`
// runs (or with --print, prints) `wrangler r2 bucket create` and `wrangler d1 create` for the names
// the config gives, and writes the database_id wrangler answers into the config in place of the
// placeholder; `check` refuses a config still holding the placeholder (the scaffold's deploy script
// runs it, because wrangler's dry run builds such a config happily and only the upload fails).
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { CommandError, runGroup, UsageError } from "./args.mjs";
import { isPlaceholderId } from "./templates.mjs";

export const summary = "create a tenant's R2 bucket and D1 database from its wrangler.toml";

export const usage = `meshbox tenant create [--print] [--config PATH] [--env NAME]
meshbox tenant check [--config PATH] [--env NAME]`;

const CONFIG_OPTIONS = { config: { type: "string" }, env: { type: "string" } };

/** `[[d1_databases]]` at the top level, `[[env.NAME.d1_databases]]` for an environment. */
const header = (env, table) => `[[${env === undefined ? table : `env.${env}.${table}`}]]`;

/** The lines of one table (from its header to the next header), with their offsets in the text. */
function tableOf(text, title) {
  const start = text.split("\n").findIndex((line) => line.trim() === title);
  if (start === -1) return null;
  const lines = text.split("\n");
  let end = start + 1;
  while (end < lines.length && !lines[end].trim().startsWith("[")) end++;
  const offset = lines.slice(0, start + 1).join("\n").length + 1;
  return { body: lines.slice(start + 1, end).join("\n"), offset };
}

function valueIn(body, key) {
  const found = new RegExp(`^\\s*${key}\\s*=\\s*"([^"]*)"`, "m").exec(body);
  return found ? { value: found[1], index: found.index + found[0].length - found[1].length - 1 } : null;
}

/** The names a tenant's config gives its Worker, bucket and database. */
export function readTenantConfig(configPath, env) {
  if (!existsSync(configPath)) throw new CommandError(`no wrangler config at ${configPath} (run this in the tenant's directory, or pass --config)`);
  const text = readFileSync(configPath, "utf8");
  const where = env === undefined ? configPath : `${configPath} [env.${env}]`;
  // The Worker's name is the first `name =` line before any table (or in [env.NAME]).
  const top = env === undefined ? { body: text.split(/^\[/m)[0], offset: 0 } : tableOf(text, `[env.${env}]`);
  const worker = top ? valueIn(top.body, "name")?.value : undefined;
  const r2 = tableOf(text, header(env, "r2_buckets"));
  const d1 = tableOf(text, header(env, "d1_databases"));
  const bucket = r2 ? valueIn(r2.body, "bucket_name")?.value : undefined;
  const database = d1 ? valueIn(d1.body, "database_name")?.value : undefined;
  const id = d1 ? valueIn(d1.body, "database_id") : null;
  if (!bucket) throw new CommandError(`${where} has no ${header(env, "r2_buckets")} with a bucket_name`);
  if (!database || id === null) throw new CommandError(`${where} has no ${header(env, "d1_databases")} with a database_name and database_id`);
  return { text, worker, bucket, database, databaseId: id.value, idOffset: d1.offset + id.index };
}

/** The database_id in `wrangler d1 create`'s answer (its config snippet is TOML or JSON). */
export function databaseIdFrom(output) {
  const found = /database_id"?\s*[=:]\s*"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"/i.exec(output);
  return found ? found[1] : null;
}

function nextSteps(env) {
  const e = env === undefined ? "" : ` --env ${env}`;
  const deploy = env === undefined ? "npm run deploy" : `npm run deploy -- --env ${env}`;
  return [
    "Next:",
    `  npx wrangler d1 migrations apply DB --remote${e}    # the schema`,
    `  npx wrangler secret put ADMIN_TOKEN${e}`,
    `  npx wrangler secret put SESSION_SIGNING_KEY${e}     # and/or MESH_TOKEN_SECRET, or the identity-provider vars`,
    `  ${deploy}`,
    "",
  ].join("\n");
}

function resolvePaths(values, io) {
  const cwd = io.cwd ?? process.cwd();
  if (values.env !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(values.env)) throw new UsageError(`--env must be an environment name (got ${JSON.stringify(values.env)})`);
  return { configPath: path.resolve(cwd, values.config ?? "wrangler.toml"), env: values.env };
}

/** Runs wrangler in the config's directory, echoing its output; resolves to { code, output }. */
function wrangler(args, cwd, io) {
  const local = path.join(cwd, "node_modules", ".bin", "wrangler");
  const command = existsSync(local) ? local : "wrangler";
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env: io.env, stdio: ["inherit", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk) => {
      output += chunk;
      io.stdout.write(chunk);
    });
    child.stderr.on("data", (chunk) => {
      output += chunk;
      io.stderr.write(chunk);
    });
    child.on("error", (err) => resolve({ code: -1, output: `could not start ${command}: ${err.message}` }));
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
  });
}

async function create({ values }, io) {
  const { configPath, env } = resolvePaths(values, io);
  const tenant = readTenantConfig(configPath, env);
  const commands = [
    ["r2", "bucket", "create", tenant.bucket],
    ["d1", "create", tenant.database],
  ];
  const shown = (args) => `npx wrangler ${args.join(" ")}`;
  if (values.print) {
    io.stdout.write(
      `# Tenant ${tenant.worker ?? tenant.database} (${configPath}${env === undefined ? "" : `, env ${env}`}): run these in its directory.\n` +
        `npx wrangler login                      # once per machine\n` +
        `${commands.map(shown).join("\n")}\n` +
        `# Then replace database_id = "${tenant.databaseId}" in ${header(env, "d1_databases")} with the id it prints\n` +
        `# (\`meshbox tenant create\` without --print does this for you).\n\n${nextSteps(env)}`,
    );
    return 0;
  }
  if (!isPlaceholderId(tenant.databaseId)) {
    io.stdout.write(`${configPath} already names database ${tenant.database} (${tenant.databaseId}); nothing to create.\n\n${nextSteps(env)}`);
    return 0;
  }
  const cwd = path.dirname(configPath);
  const bucket = await wrangler(commands[0], cwd, io);
  if (bucket.code !== 0) throw new CommandError(`\`${shown(commands[0])}\` failed (exit ${bucket.code}); nothing was written`);
  const database = await wrangler(commands[1], cwd, io);
  if (database.code !== 0) throw new CommandError(`\`${shown(commands[1])}\` failed (exit ${database.code}); the bucket exists, the config is unchanged`);
  const id = databaseIdFrom(database.output);
  if (id === null) throw new CommandError(`\`${shown(commands[1])}\` printed no database_id; paste it into ${configPath} by hand`);
  // Re-read: only the placeholder's own characters change, every comment and layout stays.
  const current = readTenantConfig(configPath, env);
  const text = current.text.slice(0, current.idOffset) + id + current.text.slice(current.idOffset + current.databaseId.length);
  writeFileSync(configPath, text);
  io.stdout.write(`\nWrote database_id = "${id}" into ${configPath}.\n\n${nextSteps(env)}`);
  return 0;
}

async function check({ values }, io) {
  const { configPath, env } = resolvePaths(values, io);
  const tenant = readTenantConfig(configPath, env);
  if (isPlaceholderId(tenant.databaseId)) {
    throw new CommandError(
      `${header(env, "d1_databases")} in ${configPath} still has the placeholder database_id ${tenant.databaseId}: ` +
        `run \`npx meshbox tenant create${env === undefined ? "" : ` --env ${env}`}\` (it creates database ${tenant.database} and writes its id), then deploy again`,
    );
  }
  io.stdout.write(values.json ? `${JSON.stringify({ ok: true, database: tenant.database, databaseId: tenant.databaseId })}\n` : `ok: database ${tenant.database} (${tenant.databaseId})\n`);
  return 0;
}

const COMMANDS = {
  create: { spec: { options: { ...CONFIG_OPTIONS, print: { type: "boolean" } } }, run: create },
  check: { spec: { options: CONFIG_OPTIONS }, run: check },
};

export async function run(argv, io) {
  return runGroup("tenant", COMMANDS, usage, argv, io);
}
