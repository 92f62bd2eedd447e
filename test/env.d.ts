// The test env: the Worker's Env plus what vitest.config.ts adds.
import type { Env as MeshboxEnv } from "../worker/env";
import type { D1Migration } from "cloudflare:test";

declare global {
  namespace Cloudflare {
    interface Env extends MeshboxEnv {
      TEST_MIGRATIONS: D1Migration[];
      /** Empty until test/worker/migrations.test.ts applies the migrations to it. */
      MIGRATION_DB: D1Database;
    }
  }
}
