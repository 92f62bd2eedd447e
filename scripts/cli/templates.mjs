// The files `meshbox init` writes for a tenant project: the one place their text lives. Each is a
// function of the project's names, so a test can compare a scaffold with exactly these.

/** The database_id a fresh scaffold carries until `meshbox tenant create` writes the real one. */
export const PLACEHOLDER_DATABASE_ID = "00000000-0000-0000-0000-000000000000";

/** A placeholder id is all zeros in its first four groups (the repo's own template varies the last). */
export const isPlaceholderId = (id) => /^0{8}-0{4}-0{4}-0{4}-[0-9a-f]{12}$/i.test(id);

/**
 * Every file of a tenant project, path → text.
 * name (of the Worker, bucket and database) and the versions of the dependencies.
 */
export function tenantFiles({ name, meshboxVersion, wranglerVersion, workersTypesVersion, typescriptVersion }) {
  return {
    "wrangler.toml": wranglerToml(name),
    "src/index.ts": workerEntry(),
    "package.json": `${JSON.stringify(packageJson(name, meshboxVersion, { wranglerVersion, workersTypesVersion, typescriptVersion }), null, 2)}\n`,
    "tsconfig.json": `${JSON.stringify(tsconfig(), null, 2)}\n`,
    ".gitignore": ["node_modules/", ".wrangler/", ".dev.vars", "dist/", ""].join("\n"),
    "README.md": readme(name),
  };
}

function wranglerToml(name) {
  return `# meshbox tenant "${name}": one Worker, one R2 bucket, one D1 database, one Durable Object namespace.
# \`npx meshbox tenant create\` creates the bucket and the database and writes the database_id below.
name = "${name}"
main = "src/index.ts"
compatibility_date = "2026-10-01"
compatibility_flags = ["nodejs_compat"]
# workers_dev = false
# routes = [{ pattern = "sync.example.com/sync/*", zone_name = "example.com" }]

[[r2_buckets]]
binding = "BUCKET"
bucket_name = "${name}"

[[d1_databases]]
binding = "DB"
database_name = "${name}"
# Written by \`npx meshbox tenant create\`; deploying with this placeholder is refused.
database_id = "${PLACEHOLDER_DATABASE_ID}"
# The schema ships with the package: upgrading @meshbox-sync/server brings its new migrations.
migrations_dir = "node_modules/@meshbox-sync/server/migrations"

[[durable_objects.bindings]]
name = "MESH_HUB"
class_name = "MeshHub"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["MeshHub"]

# Maintenance: expired sessions, deleted change bodies, idle meshes.
[triggers]
crons = ["*/5 * * * *"]

[observability]
enabled = true

# Secrets (never here): ADMIN_TOKEN, SESSION_SIGNING_KEY and/or MESH_TOKEN_SECRET, or the identity
# provider vars below; \`npx wrangler secret put NAME\`. For \`wrangler dev\`, put them in .dev.vars.
[vars]
TENANT = "${name}"
# A tenant never serves without auth.
ALLOW_OPEN_ACCESS = "0"
# AUTH_JWKS_URL = "https://example.auth0.com/.well-known/jwks.json"
# AUTH_ISSUER = "https://example.auth0.com/"
# AUTH_AUDIENCE = "https://sync.example.com"
# CORS_ORIGINS = "https://app.example.com"
`;
}

function workerEntry() {
  return `// The tenant's Worker: meshbox from the @meshbox-sync/server package, configured by the vars and
// secrets of wrangler.toml. Add routes of your own here, or options (mountPrefix, limits, cors,
// authorize, audit): see the package README, "Use as a library".
import { createMeshbox, type MeshboxEnv } from "@meshbox-sync/server";

const meshbox = createMeshbox();

// wrangler.toml binds MESH_HUB to this class.
export const MeshHub = meshbox.MeshHub;

export default {
  fetch: meshbox.fetch,
  scheduled: meshbox.scheduled,
} satisfies ExportedHandler<MeshboxEnv>;
`;
}

function packageJson(name, meshboxVersion, { wranglerVersion, workersTypesVersion, typescriptVersion }) {
  return {
    name,
    private: true,
    type: "module",
    scripts: {
      dev: "wrangler dev",
      build: "wrangler deploy --dry-run --outdir dist",
      typecheck: "tsc --noEmit",
      setup: "meshbox tenant create",
      migrate: "wrangler d1 migrations apply DB --remote",
      // The check refuses the placeholder database_id before anything is uploaded.
      deploy: "meshbox tenant check && wrangler deploy",
    },
    dependencies: { "@meshbox-sync/server": `^${meshboxVersion}` },
    devDependencies: { "@cloudflare/workers-types": workersTypesVersion, typescript: typescriptVersion, wrangler: wranglerVersion },
  };
}

function tsconfig() {
  return {
    compilerOptions: {
      target: "ES2022",
      module: "ES2022",
      moduleResolution: "Bundler",
      lib: ["ES2023"],
      types: ["@cloudflare/workers-types"],
      strict: true,
      skipLibCheck: true,
      noEmit: true,
    },
    include: ["src/**/*.ts"],
  };
}

function readme(name) {
  return `# ${name}

A meshbox tenant: the @meshbox-sync/server library in a Worker of its own. Upgrading meshbox is
\`npm install @meshbox-sync/server@latest\`, then \`npm run migrate\` and \`npm run deploy\`.

1. \`npm install\` and \`npx wrangler login\`.
2. \`npm run setup\` (\`meshbox tenant create\`): creates the R2 bucket and the D1 database and writes
   the database_id into wrangler.toml (\`npx meshbox tenant create --print\` only prints the commands).
3. \`npm run migrate\`: applies the D1 migrations that ship with the package.
4. Secrets: \`npx wrangler secret put ADMIN_TOKEN\`, \`npx wrangler secret put SESSION_SIGNING_KEY\`
   (and/or MESH_TOKEN_SECRET, or the identity-provider vars in wrangler.toml).
5. \`npm run deploy\`, then \`curl https://${name}.<your-subdomain>.workers.dev/sync/health\`.

Local development: put the same secrets in \`.dev.vars\` and run \`npm run dev\`.
Operate it with \`MESHBOX_URL=https://… MESHBOX_ADMIN_TOKEN=… npx meshbox --help\`.
`;
}
