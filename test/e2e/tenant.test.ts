// `meshbox init` and `meshbox tenant create|check` (scripts/cli/init.mjs, tenant.mjs): a tenant
// project scaffolded outside the repository builds offline with `wrangler deploy --dry-run`, and
// `tenant create` writes the database_id that `wrangler d1 create` answers. The "run" path uses a
// fake `wrangler` first on PATH that prints the real one's output shape (it would need an account).
import { execFile } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { tenantFiles } from "../../scripts/cli/templates.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const cli = path.join(root, "scripts", "meshbox-cli.mjs");
const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as {
  version: string;
  devDependencies: Record<string, string>;
};
const scratch = mkdtempSync(path.join(tmpdir(), "meshbox-tenant-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, timeout: 60_000, env: { ...process.env, WRANGLER_SEND_METRICS: "false", ...env } }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr });
    });
  });
}
const meshbox = (args: string[], cwd = scratch, env: Record<string, string> = {}) => run(process.execPath, [cli, ...args], cwd, env);

const FAKE_ID = "6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b";

/** A `wrangler` that logs its arguments and answers like wrangler 4 does (or fails when asked to). */
function fakeWrangler(): { bin: string; log: string } {
  const bin = mkdtempSync(path.join(scratch, "bin-"));
  const log = path.join(bin, "calls.log");
  writeFileSync(
    path.join(bin, "wrangler"),
    `#!/bin/sh
echo "$*" >> "${log}"
if [ -n "$FAKE_WRANGLER_FAIL" ]; then echo "✘ [ERROR] A request to the Cloudflare API failed." >&2; exit 1; fi
echo ""
echo " ⛅️ wrangler 4.156.2"
echo "───────────────────"
if [ "$1" = "d1" ]; then
  echo "✅ Successfully created DB '$3' in region WEUR"
  echo "Created your new D1 database."
  echo ""
  echo "To access your new D1 Database in your Worker, add the following snippet to your configuration file:"
  echo "[[d1_databases]]"
  echo "binding = \\"$3\\""
  echo "database_name = \\"$3\\""
  echo "database_id = \\"${FAKE_ID}\\""
else
  echo "Creating bucket '$4'..."
  echo "✅ Created bucket '$4' with default storage class of Standard."
fi
`,
  );
  chmodSync(path.join(bin, "wrangler"), 0o755);
  return { bin, log };
}

async function scaffold(dir: string, ...args: string[]): Promise<string> {
  const target = path.join(scratch, dir);
  const res = await meshbox(["init", target, ...args]);
  expect(res.stderr).toBe("");
  expect(res.code).toBe(0);
  return target;
}

describe("meshbox init", () => {
  it("writes exactly the template's files, named after the directory, with open access off", async () => {
    const dir = await scaffold("acme-sync");
    const expected = tenantFiles({
      name: "acme-sync",
      meshboxVersion: pkg.version,
      wranglerVersion: pkg.devDependencies.wrangler!,
      workersTypesVersion: pkg.devDependencies["@cloudflare/workers-types"]!,
      typescriptVersion: pkg.devDependencies.typescript!,
    });
    expect(readdirSync(dir, { recursive: true }).map(String).sort()).toEqual(["src", ...Object.keys(expected)].sort());
    for (const [file, text] of Object.entries(expected)) expect(readFileSync(path.join(dir, file), "utf8"), file).toBe(text);

    const toml = readFileSync(path.join(dir, "wrangler.toml"), "utf8");
    for (const line of [
      'name = "acme-sync"',
      'bucket_name = "acme-sync"',
      'database_name = "acme-sync"',
      'database_id = "00000000-0000-0000-0000-000000000000"',
      'migrations_dir = "node_modules/@meshbox-sync/server/migrations"',
      'class_name = "MeshHub"',
      'new_sqlite_classes = ["MeshHub"]',
      'crons = ["*/5 * * * *"]',
      'ALLOW_OPEN_ACCESS = "0"',
    ]) {
      expect(toml.split("\n"), line).toContain(line);
    }
    const manifest = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as { dependencies: Record<string, string>; devDependencies: Record<string, string>; scripts: Record<string, string> };
    expect(manifest.dependencies).toEqual({ "@meshbox-sync/server": `^${pkg.version}` });
    expect(manifest.devDependencies.wrangler).toBe(pkg.devDependencies.wrangler);
    expect(manifest.scripts.deploy).toBe("meshbox tenant check && wrangler deploy");
    expect(readFileSync(path.join(dir, "src/index.ts"), "utf8")).toContain('import { createMeshbox, type MeshboxEnv } from "@meshbox-sync/server";');
  });

  it("takes its names from --name when given", async () => {
    const dir = await scaffold("Some Dir", "--name", "tenant-2");
    expect(readFileSync(path.join(dir, "wrangler.toml"), "utf8")).toContain('\nname = "tenant-2"\n');
  });

  it("refuses a directory that holds anything (exit 1) and writes nothing into it", async () => {
    const dir = path.join(scratch, "busy");
    mkdirSync(dir);
    writeFileSync(path.join(dir, "notes.txt"), "mine");
    const res = await meshbox(["init", dir]);
    expect(res).toEqual({ code: 1, stdout: "", stderr: `meshbox: ${dir} is not empty; init writes only into an empty or new directory\n` });
    expect(readdirSync(dir)).toEqual(["notes.txt"]);
  });

  it("exits 2 with its usage for a missing dir, an extra word, an unknown flag or an unusable name", async () => {
    for (const [args, why] of [
      [["init"], "missing <dir>"],
      [["init", "a", "b"], "unexpected word: b"],
      [["init", "a", "--nmae", "x"], "Unknown option '--nmae'"],
      [["init", path.join(scratch, "x"), "--name", "Bad_Name"], 'a tenant name is lowercase letters, digits and "-" (at most 41), got "Bad_Name"'],
    ] as const) {
      const res = await meshbox([...args]);
      expect(res, args.join(" ")).toEqual({ code: 2, stdout: "", stderr: `meshbox: ${why}\n\nusage: meshbox init <dir> [--name NAME]\n` });
    }
    expect(existsSync(path.join(scratch, "x"))).toBe(false);
  });

  it("scaffolds a project that typechecks and builds offline with wrangler deploy --dry-run against this package", async () => {
    const dir = await scaffold("dry-tenant");
    // What `npm install` would give it, pointed at this checkout instead of the registry.
    for (const name of ["@meshbox-sync/server", "@cloudflare/workers-types", "typescript"]) {
      mkdirSync(path.dirname(path.join(dir, "node_modules", name)), { recursive: true });
      symlinkSync(name === "@meshbox-sync/server" ? root : path.join(root, "node_modules", name), path.join(dir, "node_modules", name), "dir");
    }
    const tsc = await run(process.execPath, [path.join(dir, "node_modules", "typescript", "bin", "tsc"), "--noEmit", "-p", dir], dir);
    expect(tsc, tsc.stdout).toEqual({ code: 0, stdout: "", stderr: "" });
    const out = path.join(dir, "dist");
    const res = await run(path.join(root, "node_modules", ".bin", "wrangler"), ["deploy", "--dry-run", "--outdir", out], dir);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toContain("env.DB (dry-tenant)");
    expect(res.stdout).toContain("env.MESH_HUB (MeshHub)");
    const bundle = readFileSync(path.join(out, "index.js"), "utf8");
    expect(bundle).toContain("// src/index.ts\nvar meshbox = createMeshbox();");
    expect(bundle).toMatch(/export \{\n\s+MeshHub\d* as MeshHub,/);
  });
});

describe("meshbox tenant", () => {
  it("--print prints the wrangler commands for the config's names, the edit, and the next steps", async () => {
    const dir = await scaffold("printed");
    const res = await meshbox(["tenant", "create", "--print"], dir);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.stdout).toBe(
      `# Tenant printed (${dir}/wrangler.toml): run these in its directory.
npx wrangler login                      # once per machine
npx wrangler r2 bucket create printed
npx wrangler d1 create printed
# Then replace database_id = "00000000-0000-0000-0000-000000000000" in [[d1_databases]] with the id it prints
# (\`meshbox tenant create\` without --print does this for you).

Next:
  npx wrangler d1 migrations apply DB --remote    # the schema
  npx wrangler secret put ADMIN_TOKEN
  npx wrangler secret put SESSION_SIGNING_KEY     # and/or MESH_TOKEN_SECRET, or the identity-provider vars
  npm run deploy
`,
    );
  });

  it("creates the bucket and the database with wrangler and writes the returned database_id into wrangler.toml", async () => {
    const dir = await scaffold("created");
    const before = readFileSync(path.join(dir, "wrangler.toml"), "utf8");
    const fake = fakeWrangler();
    const env = { PATH: `${fake.bin}${path.delimiter}${process.env.PATH ?? ""}` };

    const refused = await meshbox(["tenant", "check"], dir, env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      `meshbox: [[d1_databases]] in ${dir}/wrangler.toml still has the placeholder database_id 00000000-0000-0000-0000-000000000000: run \`npx meshbox tenant create\` (it creates database created and writes its id), then deploy again\n`,
    );

    const res = await meshbox(["tenant", "create"], dir, env);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`Wrote database_id = "${FAKE_ID}" into ${dir}/wrangler.toml.`);
    expect(readFileSync(fake.log, "utf8")).toBe("r2 bucket create created\nd1 create created\n");
    // Only the id changed; every comment and line of the template stayed.
    expect(readFileSync(path.join(dir, "wrangler.toml"), "utf8")).toBe(before.replace("00000000-0000-0000-0000-000000000000", FAKE_ID));

    expect(await meshbox(["tenant", "check"], dir, env)).toEqual({ code: 0, stdout: `ok: database created (${FAKE_ID})\n`, stderr: "" });
    const again = await meshbox(["tenant", "create"], dir, env);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`already names database created (${FAKE_ID}); nothing to create.`);
    expect(readFileSync(fake.log, "utf8")).toBe("r2 bucket create created\nd1 create created\n");
  });

  it("stops at the first failing wrangler command (exit 1) and leaves the config unchanged", async () => {
    const dir = await scaffold("failing");
    const before = readFileSync(path.join(dir, "wrangler.toml"), "utf8");
    const fake = fakeWrangler();
    const res = await meshbox(["tenant", "create"], dir, { PATH: `${fake.bin}${path.delimiter}${process.env.PATH ?? ""}`, FAKE_WRANGLER_FAIL: "1" });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("meshbox: `npx wrangler r2 bucket create failing` failed (exit 1); nothing was written\n");
    expect(readFileSync(fake.log, "utf8")).toBe("r2 bucket create failing\n");
    expect(readFileSync(path.join(dir, "wrangler.toml"), "utf8")).toBe(before);
  });

  it("reads an [env.NAME] of the repository's own wrangler.toml, as scripts/tenant-setup.mjs does", async () => {
    const res = await run(process.execPath, [path.join(root, "scripts", "tenant-setup.mjs"), "example"], root);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain("npx wrangler r2 bucket create meshbox-example\nnpx wrangler d1 create meshbox-example\n");
    expect(res.stdout).toContain("npx wrangler d1 migrations apply DB --remote --env example");
    expect(res.stdout).toContain("npm run deploy -- --env example");
  });

  it("exits 2 with its usage for an unknown command or flag, and 1 for a missing config", async () => {
    const unknown = await meshbox(["tenant", "create", "--prnit"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe("meshbox: Unknown option '--prnit'\n\nusage: meshbox tenant create [--print] [--config PATH] [--env NAME]\n");
    const command = await meshbox(["tenant", "destroy"]);
    expect(command.code).toBe(2);
    expect(command.stderr).toContain('meshbox: unknown command "tenant destroy"');
    const missing = await meshbox(["tenant", "check", "--config", "nope.toml"]);
    expect(missing).toEqual({ code: 1, stdout: "", stderr: `meshbox: no wrangler config at ${scratch}/nope.toml (run this in the tenant's directory, or pass --config)\n` });
  });
});
