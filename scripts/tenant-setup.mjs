#!/usr/bin/env node
// `node scripts/tenant-setup.mjs <tenant>`: kept for tenants that live as [env.<tenant>] in this
// repository's wrangler.toml; it is `meshbox tenant create --print --env <tenant>`. New tenants
// need no fork: `meshbox init <dir>` (README "Deploy a tenant").
import { main } from "./meshbox-cli.mjs";

const tenant = process.argv[2];
if (!tenant || process.argv.length > 3 || !/^[a-z0-9][a-z0-9-]{0,40}$/.test(tenant)) {
  console.error("usage: node scripts/tenant-setup.mjs <tenant>   (an [env.<tenant>] of wrangler.toml)");
  process.exit(2);
}
process.exitCode = await main(["tenant", "create", "--print", "--env", tenant]);
