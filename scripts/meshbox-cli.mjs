#!/usr/bin/env node
// meshbox admin CLI: a thin client of the admin API (/sync/admin/...). Plain Node ESM, no deps.
//   npx meshbox --url https://sync.example.com --token <ADMIN_TOKEN> keys list
// The URL and token may come from MESHBOX_URL and MESHBOX_ADMIN_TOKEN instead (a token on the
// command line is visible to other local users in the process list; prefer the variable).
// Exit codes: 0 ok, 1 the server refused or could not be reached, 2 bad usage.
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";

const USAGE = `usage: meshbox [--url URL] [--token TOKEN] [--json] <command>

commands:
  keys create --name NAME --mesh PATTERN [--access full|readonly]
  keys list
  keys revoke <key-id>
  sessions list [--mesh PATTERN] [--include-expired] [--limit N]
  sessions revoke <session-id>
  mesh stats <mesh>
  mesh wipe <mesh> --yes
  mesh reconcile <mesh>
  mesh export <mesh> -o FILE              (MESHBOX_URL / MESHBOX_ADMIN_TOKEN only)
  mesh import <mesh> -i FILE [--replace]
  maintenance run
  mesh-id issue

options:
  --url URL      the Worker's URL, e.g. https://meshbox-acme.example.workers.dev (the mount
                 prefix /sync is added when the URL has no path)   [env MESHBOX_URL]
  --token TOKEN  the tenant's ADMIN_TOKEN                          [env MESHBOX_ADMIN_TOKEN]
  --json         print the server's JSON answer instead of a table
  --help         this text

A mesh PATTERN is an exact mesh id, "*" (every mesh), or a prefix ending in "*".`;

class UsageError extends Error {}

const BOOLEAN_FLAGS = new Set(["json", "help", "yes", "include-expired"]);

/** Splits argv into positional words and --flags (`--name value` or `--name=value`). */
export function parseArgs(argv) {
  const words = [];
  const flags = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      words.push(...argv.slice(i + 1));
      break;
    }
    if (arg === "-h") {
      flags.help = true;
      continue;
    }
    if (!arg.startsWith("--")) {
      words.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    if (name === "") throw new UsageError(`bad option ${arg}`);
    if (BOOLEAN_FLAGS.has(name)) {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`);
      flags[name] = true;
    } else if (eq !== -1) {
      flags[name] = arg.slice(eq + 1);
    } else {
      const value = argv[i + 1];
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
      flags[name] = value;
      i++;
    }
  }
  return { words, flags };
}

/** The admin API base, e.g. https://host/sync/admin. */
export function adminBase(raw) {
  let url;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--url ${JSON.stringify(raw)} is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError("--url must be http(s)");
  const path = url.pathname.replace(/\/+$/, "");
  return `${url.origin}${path === "" ? "/sync" : path}/admin`;
}

function cell(value) {
  if (value === null || value === undefined) return "-";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function printTable(rows, columns) {
  if (rows.length === 0) {
    console.log("(none)");
    return;
  }
  const cells = rows.map((row) => columns.map((c) => cell(row[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const line = (values) => values.map((v, i) => v.padEnd(widths[i])).join("  ").trimEnd();
  console.log(line(columns));
  console.log(line(widths.map((w) => "-".repeat(w))));
  for (const r of cells) console.log(line(r));
}

/** One object as aligned "key  value" lines; nested objects are flattened with dots. */
function printRecord(record, prefix = "") {
  const entries = [];
  const walk = (value, path) => {
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) walk(v, path === "" ? k : `${path}.${k}`);
    } else {
      entries.push([path, Array.isArray(value) ? value.map(cell).join(", ") || "-" : cell(value)]);
    }
  };
  walk(record, prefix);
  const width = Math.max(...entries.map(([k]) => k.length));
  for (const [k, v] of entries) console.log(`${k.padEnd(width)}  ${v}`);
}

async function request(ctx, method, path, body) {
  const headers = { Authorization: `Bearer ${ctx.token}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(`${ctx.base}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(120_000),
    });
  } catch (err) {
    throw new Error(`could not reach ${ctx.base}: ${err?.cause?.message ?? err?.message ?? err}`);
  }
  const text = await res.text();
  let parsed = null;
  try {
    parsed = text === "" ? null : JSON.parse(text);
  } catch {
    // not JSON: reported below if the status is an error
  }
  if (!res.ok) {
    const message = parsed && typeof parsed.message === "string" ? parsed.message : text.slice(0, 500) || res.statusText;
    const code = parsed && typeof parsed.error === "string" ? ` ${parsed.error}` : "";
    throw new Error(`${res.status}${code}: ${message}`);
  }
  return parsed;
}

function need(value, what) {
  if (value === undefined || value === "") throw new UsageError(`missing ${what}`);
  return value;
}

const enc = encodeURIComponent;
const MAX_RECONCILE_REQUESTS = 1000;

/** Each command: how to call the API, then how to print the answer as text. */
const COMMANDS = {
  "keys create": {
    call: (ctx, args, flags) =>
      request(ctx, "POST", "/keys", {
        name: need(flags.name, "--name"),
        meshPattern: need(flags.mesh, "--mesh"),
        access: flags.access ?? "full",
      }),
    print: (key) => {
      printRecord(key);
      console.log("\nThe key is shown only this once: store it now.");
    },
  },
  "keys list": {
    call: (ctx) => request(ctx, "GET", "/keys"),
    print: ({ keys }) => printTable(keys, ["id", "name", "meshPattern", "access", "createdAt", "lastUsedAt", "revokedAt"]),
  },
  "keys revoke": {
    call: (ctx, args) => request(ctx, "DELETE", `/keys/${enc(need(args[0], "<key-id>"))}`),
    print: ({ key }) => console.log(`revoked key ${key.id} (${key.name}) at ${key.revokedAt}; sessions revoked: ${key.sessionsRevoked}`),
  },
  "sessions list": {
    call: (ctx, args, flags) => {
      const query = new URLSearchParams();
      if (flags.mesh !== undefined) query.set("mesh", flags.mesh);
      if (flags["include-expired"]) query.set("includeExpired", "1");
      if (flags.limit !== undefined) query.set("limit", flags.limit);
      const qs = query.toString();
      return request(ctx, "GET", `/sessions${qs === "" ? "" : `?${qs}`}`);
    },
    print: ({ sessions }) =>
      printTable(sessions, ["jti", "keyId", "subject", "meshPattern", "scope", "issuedAt", "expiresAt", "revokedAt"]),
  },
  "sessions revoke": {
    call: (ctx, args) => request(ctx, "DELETE", `/sessions/${enc(need(args[0], "<session-id>"))}`),
    print: ({ session }) => console.log(`revoked session ${session.jti} at ${session.revokedAt}`),
  },
  "mesh stats": {
    call: (ctx, args) => request(ctx, "GET", `/meshes/${enc(need(args[0], "<mesh>"))}`),
    print: (stats) => printRecord(stats),
  },
  "mesh wipe": {
    call: (ctx, args, flags) => {
      const mesh = need(args[0], "<mesh>");
      if (!flags.yes) throw new UsageError(`wiping deletes every object of mesh ${mesh}; add --yes to confirm`);
      return request(ctx, "DELETE", `/meshes/${enc(mesh)}`);
    },
    print: (result) => {
      printRecord(result);
      if (!result.complete) console.log("\nNot everything was deleted in one go: run the wipe again to finish.");
    },
  },
  "mesh reconcile": {
    // The server stops at a time/page budget and says where to resume; keep going until done.
    call: async (ctx, args) => {
      const mesh = need(args[0], "<mesh>");
      const total = { mesh, scanned: { r2: 0, hub: 0, heads: 0 }, added: 0, tombstoned: 0, fixed: 0, complete: false, requests: 0 };
      let startAfter;
      for (let i = 0; i < MAX_RECONCILE_REQUESTS; i++) {
        const report = await request(ctx, "POST", `/meshes/${enc(mesh)}/reconcile`, startAfter === undefined ? undefined : { startAfter });
        total.requests++;
        for (const k of ["r2", "hub", "heads"]) total.scanned[k] += report.scanned[k];
        total.added += report.added;
        total.tombstoned += report.tombstoned;
        total.fixed += report.fixed;
        total.complete = report.complete;
        const repaired = report.added + report.tombstoned + report.fixed;
        // Same resume point and nothing repaired: another call would do exactly the same.
        if (report.complete || report.resumeAfter === null || (report.resumeAfter === (startAfter ?? "") && repaired === 0)) break;
        startAfter = report.resumeAfter;
      }
      return total;
    },
    print: (report) => {
      printRecord(report);
      if (!report.complete) console.log("\nNot every object could be compared within the server's budget: run it again.");
    },
  },
  "maintenance run": {
    call: (ctx) => request(ctx, "POST", "/maintenance"),
    print: (report) => {
      const idle = report.idleCleanup.enabled
        ? `${report.idleCleanup.evicted.length} evicted (TTL ${report.idleCleanup.ttlDays} days)`
        : "off";
      printRecord({
        at: report.at,
        sessionsDeleted: report.sessionsDeleted,
        tombstonesPurged: report.tombstonesPurged,
        idleCleanup: idle,
        reconciledMeshes: report.reconciled.length,
        errors: report.errors.length,
        ms: report.ms,
      });
      if (report.idleCleanup.enabled && report.idleCleanup.evicted.length > 0) {
        console.log("\nevicted:");
        printTable(report.idleCleanup.evicted, ["mesh", "roots", "r2Objects", "controlObjects", "complete", "recorded"]);
      }
      if (report.reconciled.length > 0) {
        console.log("\nreconciled:");
        printTable(report.reconciled, ["mesh", "added", "tombstoned", "fixed", "complete"]);
      }
      if (report.errors.length > 0) {
        console.log("\nerrors:");
        printTable(report.errors, ["task", "error"]);
      }
    },
  },
  "mesh-id issue": {
    call: (ctx) => request(ctx, "POST", "/mesh-ids"),
    print: ({ meshId }) => console.log(meshId),
  },
};

export async function main(argv, env = process.env) {
  // Backup and restore live in their own module (the per-group layout of the CLI contract); it
  // takes the server and token from MESHBOX_URL / MESHBOX_ADMIN_TOKEN.
  if (argv[0] === "mesh" && (argv[1] === "export" || argv[1] === "import")) {
    const { run } = await import("./cli/archive.mjs");
    return run(argv.slice(1), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env, isTTY: Boolean(process.stdout.isTTY) });
  }
  let parsed;
  try {
    parsed = parseArgs(argv);
  } catch (err) {
    console.error(`meshbox: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  const { words, flags } = parsed;
  if (flags.help || words.length === 0) {
    (flags.help ? console.log : console.error)(USAGE);
    return flags.help ? 0 : 2;
  }
  const name = words.slice(0, 2).join(" ");
  const command = COMMANDS[name];
  if (command === undefined) {
    console.error(`meshbox: unknown command "${words.join(" ")}"\n\n${USAGE}`);
    return 2;
  }
  try {
    const url = flags.url ?? env.MESHBOX_URL;
    const token = flags.token ?? env.MESHBOX_ADMIN_TOKEN;
    if (!url) throw new UsageError("no server: pass --url or set MESHBOX_URL");
    if (!token) throw new UsageError("no admin token: pass --token or set MESHBOX_ADMIN_TOKEN");
    const ctx = { base: adminBase(url), token };
    const answer = await command.call(ctx, words.slice(2), flags);
    if (flags.json) console.log(JSON.stringify(answer, null, 2));
    else command.print(answer);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`meshbox: ${err.message}`);
      return 2;
    }
    console.error(`meshbox: ${err.message}`);
    return 1;
  }
}

// Run only when executed (npx meshbox / node scripts/meshbox-cli.mjs), not when imported.
const invoked = process.argv[1] ? realpathSync(process.argv[1]) : "";
if (invoked === realpathSync(fileURLToPath(import.meta.url))) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
