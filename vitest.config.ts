// Two projects: "workers" runs inside workerd with real local R2, D1 and Durable Objects
// (@cloudflare/vitest-plugin); "e2e" runs in Node and drives a real `wrangler dev` like devices do.
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

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
