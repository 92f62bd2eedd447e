// With no INDEX_DB_<i> bound (the "workers" project, and every tenant that never added shards),
// DB is the only index shard: the per-mesh database is DB itself, and the directory is never used.
import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { indexDbFor } from "../../worker/shards/mesh-index-db";
import { isSharded, shardCount } from "../../worker/shards/shard-bindings";
import { changeName, ioUrl, newMesh } from "./io-support";

describe("the unsharded index", () => {
  it("runs every per-mesh query on DB itself and never writes the shard directory", async () => {
    expect(isSharded(env)).toBe(false);
    expect(shardCount(env)).toBe(1);
    const mesh = newMesh();
    expect(indexDbFor(env, mesh)).toBe(env.DB);
    const put = await SELF.fetch(ioUrl(mesh, "file", `/MyApp/changes/${changeName(1)}`), { method: "PUT", body: "{}" });
    expect(put.status).toBe(201);
    const rows = await env.DB.prepare(`SELECT count(*) AS n FROM objects WHERE mesh = ?1`).bind(mesh).first<{ n: number }>();
    expect(rows?.n).toBe(1);
    const placed = await env.DB.prepare(`SELECT count(*) AS n FROM index_directory`).first<{ n: number }>();
    expect(placed?.n).toBe(0);
  });
});
