// `meshbox grants …`: mesh grants for identity-provider subjects (the token's `sub`), over the
// admin API (/sync/admin/grants). A module of the CLI dispatcher (scripts/meshbox-cli.mjs).
import { parseArgs } from "node:util";

export const summary = "grant identity-provider subjects access to meshes";

export const usage = `usage: meshbox grants add --sub SUBJECT --mesh PATTERN [--access full|readonly] [--json]
       meshbox grants list [--sub SUBJECT] [--json]
       meshbox grants revoke <grant-id> [--json]

SUBJECT is the token's sub claim exactly (e.g. "auth0|64f0…", "user_2abc…").
A mesh PATTERN is an exact mesh id, "*" (every mesh), or a prefix ending in "*".
Server and token: MESHBOX_URL (default http://127.0.0.1:8787/sync) and MESHBOX_ADMIN_TOKEN.`;

class UsageError extends Error {}

const COMMANDS = {
  add: { options: { sub: { type: "string" }, mesh: { type: "string" }, access: { type: "string" }, json: { type: "boolean" } }, positionals: 0 },
  list: { options: { sub: { type: "string" }, json: { type: "boolean" } }, positionals: 0 },
  revoke: { options: { json: { type: "boolean" } }, positionals: 1 },
};

function parse(command, argv) {
  const spec = COMMANDS[command];
  if (spec === undefined) throw new UsageError(command === undefined ? "missing command" : `unknown command ${command}`);
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: spec.options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(err.message);
  }
  if (parsed.positionals.length !== spec.positionals) {
    throw new UsageError(spec.positionals === 0 ? `unexpected argument ${parsed.positionals[0]}` : "give exactly one grant id");
  }
  return parsed;
}

/** The admin API base without a trailing slash, e.g. http://127.0.0.1:8787/sync. */
function baseOf(env) {
  const raw = env.MESHBOX_URL ?? "http://127.0.0.1:8787/sync";
  const url = new URL(raw);
  const path = url.pathname.replace(/\/+$/, "");
  return `${url.origin}${path === "" ? "/sync" : path}`;
}

class RequestFailed extends Error {}

/** One admin call; the server's `{ error, message }` becomes a one-line failure (exit 1). */
async function adminFetch(path, init, env) {
  const token = env.MESHBOX_ADMIN_TOKEN;
  if (!token) throw new RequestFailed("no admin token: set MESHBOX_ADMIN_TOKEN");
  let res;
  try {
    res = await fetch(`${baseOf(env)}/admin${path}`, {
      ...init,
      headers: { Authorization: `Bearer ${token}`, ...(init.body ? { "Content-Type": "application/json" } : {}) },
    });
  } catch (err) {
    throw new RequestFailed(`cannot reach ${baseOf(env)}: ${err.cause?.code ?? err.message}`);
  }
  const text = await res.text();
  let body = null;
  try {
    body = text === "" ? null : JSON.parse(text);
  } catch {
    // not JSON: reported below with the status
  }
  if (!res.ok) throw new RequestFailed(`${res.status} ${body?.error ?? "error"}: ${body?.message ?? text.slice(0, 200)}`);
  return body;
}

function table(rows) {
  const columns = ["id", "subject", "meshPattern", "access", "createdAt"];
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const line = (cells) => cells.map((cell, i) => String(cell).padEnd(widths[i])).join("  ").trimEnd();
  return [line(columns), ...rows.map((r) => line(columns.map((c) => r[c])))].join("\n") + "\n";
}

export async function run(argv, io) {
  const [command, ...rest] = argv;
  let parsed;
  try {
    parsed = parse(command, rest);
    if (command === "add") {
      if (!parsed.values.sub) throw new UsageError("--sub is required");
      if (!parsed.values.mesh) throw new UsageError("--mesh is required");
      const access = parsed.values.access ?? "full";
      if (access !== "full" && access !== "readonly") throw new UsageError("--access must be full or readonly");
    }
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr.write(`meshbox grants: ${err.message}\n${usage}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  try {
    let answer;
    if (command === "add") {
      answer = await adminFetch("/grants", {
        method: "POST",
        body: JSON.stringify({ subject: values.sub, meshPattern: values.mesh, access: values.access ?? "full" }),
      }, io.env);
      io.stdout.write(values.json ? `${JSON.stringify(answer)}\n` : table([answer]));
    } else if (command === "list") {
      const query = values.sub === undefined ? "" : `?sub=${encodeURIComponent(values.sub)}`;
      answer = await adminFetch(`/grants${query}`, { method: "GET" }, io.env);
      io.stdout.write(values.json ? `${JSON.stringify(answer)}\n` : answer.grants.length === 0 ? "no grants\n" : table(answer.grants));
    } else {
      answer = await adminFetch(`/grants/${encodeURIComponent(positionals[0])}`, { method: "DELETE" }, io.env);
      io.stdout.write(values.json ? `${JSON.stringify(answer)}\n` : `revoked ${answer.grant.id} (${answer.grant.subject} → ${answer.grant.meshPattern})\n`);
    }
    return 0;
  } catch (err) {
    if (!(err instanceof RequestFailed)) throw err;
    io.stderr.write(`meshbox: ${err.message}\n`);
    return 1;
  }
}
