// Two projects: "workers" runs inside workerd with real local R2, D1 and Durable Objects
// (@cloudflare/vitest-plugin); "e2e" runs in Node and drives a real `wrangler dev` like devices do.
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

/**
 * The workers tests that also run against 4 index shards ("workers-shards"): every per-mesh query
 * goes to the mesh's shard, so these are the ones that read and write the index (README "Tests").
 */
const SHARDED_TESTS = [
  "io-files",
  "io-listings",
  "io-hub-classes",
  "io-faults",
  "io-push",
  "io-validation",
  "io-model",
  "object-index",
  "control-cas",
  "control-faults",
  "faults",
  "admin-meshes",
  "admin-mesh-list",
  "admin-activity",
  "maintenance",
  "mesh-archive",
  "stored-files",
  "snapshots-chunked",
  "snapshots-delete",
  "protocol-fidelity",
  "index-shards",
].map((name) => `test/worker/${name}.test.ts`);

export default defineConfig(async () => {
  const migrations = await readD1Migrations("./migrations");
  return {
    test: {
      projects: [
        {
          plugins: [
            cloudflareTest({
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: {
                bindings: { TEST_MIGRATIONS: migrations, LOG_REQUESTS: "0" },
                // The upstream runtime's database and bucket for the migrate-upstream tests.
                d1Databases: { LEGACY_DB: "legacy-db" },
                r2Buckets: { LEGACY_FILES: "legacy-files" },
              },
            }),
          ],
          test: {
            name: "workers",
            include: ["test/lib/**/*.test.ts", "test/worker/**/*.test.ts", "test/durable-objects/**/*.test.ts"],
            // Needs the four index shards of "workers-shards".
            exclude: ["test/worker/index-shards.test.ts"],
            setupFiles: ["./test/apply-migrations.ts"],
          },
        },
        {
          plugins: [
            cloudflareTest({
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: {
                bindings: { TEST_MIGRATIONS: migrations, LOG_REQUESTS: "0" },
                // Four local index shards besides DB (which keeps the directory and auth state).
                d1Databases: {
                  LEGACY_DB: "legacy-db",
                  INDEX_DB_0: "index-db-0",
                  INDEX_DB_1: "index-db-1",
                  INDEX_DB_2: "index-db-2",
                  INDEX_DB_3: "index-db-3",
                },
                r2Buckets: { LEGACY_FILES: "legacy-files" },
              },
            }),
          ],
          test: {
            name: "workers-shards",
            include: SHARDED_TESTS,
            setupFiles: ["./test/apply-migrations.ts"],
          },
        },
        {
          test: {
            name: "e2e",
            environment: "node",
            include: ["test/e2e/**/*.test.ts"],
            testTimeout: 120_000,
            hookTimeout: 120_000,
            fileParallelism: false,
          },
        },
      ],
    },
  };
});
