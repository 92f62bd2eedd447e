// Applies the real D1 migrations before the workers projects' tests run: to DB, and to every
// index shard when the project binds them (the "workers-shards" project binds INDEX_DB_0..3).
import { applyD1Migrations, env } from "cloudflare:test";

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
for (let shard = 0; shard < 16; shard++) {
  const db = (env as unknown as Record<string, D1Database | undefined>)[`INDEX_DB_${shard}`];
  if (db === undefined) break;
  await applyD1Migrations(db, env.TEST_MIGRATIONS);
}
