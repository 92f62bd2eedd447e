// scripts/deploy.mjs refuses what can only fail or do harm after upload: no tenant named, or a
// tenant whose D1 database id is still the template's placeholder (which the dry run accepts).
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const deploy = (...args: string[]) =>
  spawnSync(process.execPath, [path.join(root, "scripts/deploy.mjs"), ...args], { cwd: root, encoding: "utf8", timeout: 30_000 });

describe("npm run deploy", () => {
  it("refuses to deploy without --env, so the local section is never deployed (exit 2)", () => {
    const run = deploy();
    expect(run.status).toBe(2);
    expect(run.stderr).toContain("name the tenant");
  });

  it("refuses a tenant whose database_id is still the placeholder, naming the command that makes a real one (exit 1)", () => {
    const run = deploy("--env", "example", "--dry-run");
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("[[env.example.d1_databases]] still has the placeholder database_id 00000000-0000-0000-0000-00000000e3a1");
    expect(run.stderr).toContain("npx wrangler d1 create meshbox-example");
  });
});
