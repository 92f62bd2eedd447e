// Two projects: "workers" runs inside workerd with real local R2, D1 and Durable Objects
// (@cloudflare/vitest-plugin); "e2e" runs in Node and drives a real `wrangler dev` like devices do.
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

/** Every workers test; "workers-shards" runs them all again against 4 index shards. */
const WORKERS_TESTS = ["test/lib/**/*.test.ts", "test/worker/**/*.test.ts", "test/durable-objects/**/*.test.ts"];

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
                bindings: { TEST_MIGRATIONS: migrations, LOG_REQUESTS: "0", PUSH_HOLD_MS: "0" },
                // The upstream runtime's database and bucket for the migrate-upstream tests.
                // MIGRATION_DB starts empty: the migration-upgrade test applies the migrations step by step.
                d1Databases: { LEGACY_DB: "legacy-db", MIGRATION_DB: "migration-db" },
                r2Buckets: { LEGACY_FILES: "legacy-files" },
              },
            }),
          ],
          test: {
            name: "workers",
            include: WORKERS_TESTS,
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
                bindings: { TEST_MIGRATIONS: migrations, LOG_REQUESTS: "0", PUSH_HOLD_MS: "0" },
                // Four local index shards besides DB (which keeps the directory and auth state).
                d1Databases: {
                  LEGACY_DB: "legacy-db",
                  MIGRATION_DB: "migration-db-shards",
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
            include: WORKERS_TESTS,
            // Asserts the layout without shards.
            exclude: ["test/worker/index-unsharded.test.ts"],
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
