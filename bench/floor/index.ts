// The floor: each route does one bare platform operation (or the bare pair meshbox needs), with
// the same bindings and the same D1 index table as meshbox, so the bench can put every meshbox
// figure next to what the platform itself costs under the same `wrangler dev`, in the same run.
//   GET  /floor/noop                       nothing
//   PUT  /floor/r2?key=K                   R2 put of the body
//   GET  /floor/r2?key=K                   R2 get, body streamed back
//   PUT  /floor/d1?mesh=M&path=P           one D1 upsert into the index table
//   GET  /floor/d1-list?mesh=M&parent=F    D1 select of a folder's rows, serialized as the wire's JSON
//   POST /floor/d1-fill?mesh=M&parent=F    rows [{name, size}] into a folder (bench setup only)
//   GET  /floor/do?mesh=M&key=K            DO RPC reading one SQLite row
//   PUT  /floor/do?mesh=M&key=K            DO RPC writing the body to SQLite
//   PUT  /floor/r2-d1?mesh=M&path=P        R2 put, then one D1 upsert (meshbox's change-file PUT)
import { DurableObject } from "cloudflare:workers";

interface Env {
  BUCKET: R2Bucket;
  DB: D1Database;
  FLOOR_HUB: DurableObjectNamespace<FloorHub>;
}

export class FloorHub extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB NOT NULL, version INTEGER NOT NULL)");
  }

  read(key: string): { v: ArrayBuffer; version: number } | null {
    const rows = this.ctx.storage.sql.exec<{ v: ArrayBuffer; version: number }>("SELECT v, version FROM kv WHERE k = ?", key).toArray();
    return rows[0] ?? null;
  }

  write(key: string, value: ArrayBuffer): number {
    const row = this.ctx.storage.sql
      .exec<{ version: number }>(
        "INSERT INTO kv (k, v, version) VALUES (?1, ?2, 1) ON CONFLICT (k) DO UPDATE SET v = excluded.v, version = kv.version + 1 RETURNING version",
        key,
        value,
      )
      .one();
    return row.version;
  }
}

const JSON_HEADERS = { "Content-Type": "application/json" };

function upsert(db: D1Database, mesh: string, path: string, size: number, etag: string): D1PreparedStatement {
  const slash = path.lastIndexOf("/");
  return db
    .prepare(
      `INSERT INTO objects (mesh, path, parent, name, size, etag, modified_at, class, location, version, deleted_at)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'change', 'r2', 0, NULL)
       ON CONFLICT (mesh, path) DO UPDATE SET size = excluded.size, etag = excluded.etag, modified_at = excluded.modified_at`,
    )
    .bind(mesh, path, slash <= 0 ? "/" : path.slice(0, slash), path.slice(slash + 1), size, etag, Date.now());
}

function hub(env: Env, mesh: string) {
  return env.FLOOR_HUB.get(env.FLOOR_HUB.idFromName(mesh));
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    const q = (name: string) => url.searchParams.get(name) ?? "";
    const route = `${request.method} ${url.pathname}`;
    switch (route) {
      case "GET /floor/noop":
        return new Response('{"ok":true}', { headers: JSON_HEADERS });
      case "PUT /floor/r2": {
        const stored = await env.BUCKET.put(q("key"), await request.arrayBuffer());
        return new Response(null, { status: 201, headers: { ETag: stored?.httpEtag ?? "" } });
      }
      case "GET /floor/r2": {
        const object = await env.BUCKET.get(q("key"));
        if (object === null) return new Response(null, { status: 404 });
        // The type meshbox serves every sync object with. Without one, wrangler dev answered about
        // 0.5 ms slower, which made meshbox's GETs look cheaper than they are.
        return new Response(object.body, { headers: { ETag: object.httpEtag, "Content-Length": String(object.size), "Content-Type": "application/octet-stream" } });
      }
      case "PUT /floor/d1": {
        const body = await request.arrayBuffer();
        await upsert(env.DB, q("mesh"), q("path"), body.byteLength, `"${body.byteLength}"`).run();
        return new Response(null, { status: 201 });
      }
      case "GET /floor/d1-list": {
        // The rows a listing needs, shaped as the wire's FileInfo: the same bytes meshbox sends.
        const { results } = await env.DB.prepare(
          `SELECT name, path, size, etag, modified_at FROM objects
           WHERE mesh = ?1 AND parent = ?2 AND deleted_at IS NULL ORDER BY name`,
        )
          .bind(q("mesh"), q("parent"))
          .all<{ name: string; path: string; size: number; etag: string; modified_at: number }>();
        const files = results.map((r) => ({ name: r.name, path: r.path, size: r.size, modifiedTime: new Date(r.modified_at).toISOString(), etag: r.etag }));
        return new Response(JSON.stringify({ files }), { headers: JSON_HEADERS });
      }
      case "POST /floor/d1-fill": {
        // Bench setup: rows named and sized as the body says ([{name, size}], at most 1,000).
        const rows = ((await request.json()) as { name: string; size: number }[]).slice(0, 1_000);
        const parent = q("parent");
        const statements: D1PreparedStatement[] = [];
        for (let at = 0; at < rows.length; at += 200) {
          statements.push(
            env.DB.prepare(
              `INSERT OR IGNORE INTO objects (mesh, path, parent, name, size, etag, modified_at, class, location, version, deleted_at)
               SELECT ?1, ?2 || '/' || json_extract(value, '$.name'), ?2, json_extract(value, '$.name'), json_extract(value, '$.size'),
                      '"0123456789abcdef0123456789abcdef"', ?3, 'change', 'r2', 0, NULL
               FROM json_each(?4)`,
            ).bind(q("mesh"), parent, Date.now(), JSON.stringify(rows.slice(at, at + 200))),
          );
        }
        if (statements.length > 0) await env.DB.batch(statements);
        return new Response(null, { status: 204 });
      }
      case "GET /floor/do": {
        const found = await hub(env, q("mesh")).read(q("key"));
        if (found === null) return new Response(null, { status: 404 });
        return new Response(found.v, { headers: JSON_HEADERS });
      }
      case "PUT /floor/do": {
        const version = await hub(env, q("mesh")).write(q("key"), await request.arrayBuffer());
        return new Response(null, { status: 204, headers: { ETag: `"${version}"` } });
      }
      case "PUT /floor/r2-d1": {
        const body = await request.arrayBuffer();
        const stored = await env.BUCKET.put(`${q("mesh")}${q("path")}`, body, { onlyIf: { etagDoesNotMatch: "*" } });
        const etag = stored?.httpEtag ?? '"exists"';
        await upsert(env.DB, q("mesh"), q("path"), body.byteLength, etag).run();
        return new Response(null, { status: 201, headers: { ETag: etag } });
      }
      default:
        return new Response('{"error":"not_found"}', { status: 404, headers: JSON_HEADERS });
    }
  },
} satisfies ExportedHandler<Env>;
