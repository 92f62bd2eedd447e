#!/usr/bin/env node
// `node scripts/tenant-setup.mjs <tenant>`: prints, in order, every command that creates a
// tenant's Cloudflare resources and deploys it. It runs nothing itself: the output is a checklist
// to read and paste, because each step needs your Cloudflare account and one step (the D1 id)
// needs an edit of wrangler.toml in between.
const tenant = process.argv[2];
if (!tenant || !/^[a-z0-9][a-z0-9-]{0,40}$/.test(tenant)) {
  console.error("usage: node scripts/tenant-setup.mjs <tenant>   (lowercase letters, digits and '-')");
  process.exit(2);
}

const name = `meshbox-${tenant}`;
const e = `--env ${tenant}`;
const steps = [
  ["Log in to Cloudflare (once per machine)", ["npx wrangler login"]],
  [
    `Copy the [env.example] block of wrangler.toml to [env.${tenant}]: replace every "example" with "${tenant}" (Worker name ${name}, bucket ${name}, database ${name}, TENANT = "${tenant}")`,
    [],
  ],
  ["Create the R2 bucket", [`npx wrangler r2 bucket create ${name}`]],
  [
    `Create the D1 database, then paste the database_id it prints into [[env.${tenant}.d1_databases]]`,
    [`npx wrangler d1 create ${name}`],
  ],
  ["Apply the D1 migrations (the whole schema)", [`npx wrangler d1 migrations apply DB --remote ${e}`]],
  [
    "Put the secrets (each command prompts for the value; `openssl rand -base64 32` makes a good one)",
    [
      `npx wrangler secret put ADMIN_TOKEN ${e}`,
      `npx wrangler secret put SESSION_SIGNING_KEY ${e}`,
      `npx wrangler secret put MESH_TOKEN_SECRET ${e}          # only for clients that use mesh bearer tokens`,
      `npx wrangler secret put MESH_ID_CHECKSUM_SECRET ${e}    # only to issue checksummed mesh ids`,
    ],
  ],
  ["Check that it builds, then deploy", [`npx wrangler deploy ${e} --dry-run --outdir .tmp/${tenant}-dry`, `npm run deploy -- ${e}`]],
  [
    "Smoke-test it and create a first API key (URL as printed by the deploy)",
    [
      `curl https://${name}.<your-subdomain>.workers.dev/sync/health`,
      `MESHBOX_URL=https://${name}.<your-subdomain>.workers.dev MESHBOX_ADMIN_TOKEN=<admin token> npx meshbox keys create --name first-app --mesh '*'`,
    ],
  ],
];

console.log(`# meshbox tenant "${tenant}": run these in order from the repository root.\n`);
steps.forEach(([title, commands], i) => {
  console.log(`# ${i + 1}. ${title}`);
  for (const command of commands) console.log(command);
  console.log("");
});
