// Counting build: meshbox's own fetch handler and hub, with env.DB, env.BUCKET and env.MESH_HUB
// wrapped so every billable operation is counted. The counters are read (and reset) over
// GET/POST /__bench/counts. Wrapping a real binding to count calls; nothing is faked.
import meshbox from "../../worker/index";
import type { Env } from "../../worker/env";

export { MeshHub } from "../../durable-objects/mesh-hub";

interface Counts {
  d1Reads: number;
  d1Writes: number;
  d1RowsRead: number;
  d1RowsWritten: number;
  d1Batches: number;
  r2ClassA: number;
  r2ClassB: number;
  r2Free: number;
  doRequests: number;
  byOperation: Record<string, number>;
}

const zero = (): Counts => ({
  d1Reads: 0,
  d1Writes: 0,
  d1RowsRead: 0,
  d1RowsWritten: 0,
  d1Batches: 0,
  r2ClassA: 0,
  r2ClassB: 0,
  r2Free: 0,
  doRequests: 0,
  byOperation: {},
});

let counts = zero();

function tally(op: string): void {
  counts.byOperation[op] = (counts.byOperation[op] ?? 0) + 1;
}

const READ_SQL = /^\s*(SELECT|WITH)\b/i;

function record(sql: string, meta: D1Meta | undefined): void {
  const read = READ_SQL.test(sql);
  if (read) counts.d1Reads++;
  else counts.d1Writes++;
  counts.d1RowsRead += meta?.rows_read ?? 0;
  counts.d1RowsWritten += meta?.rows_written ?? 0;
  tally(`D1 ${read ? "read" : "write"}: ${sql.trim().split(/\s+/).slice(0, 4).join(" ")}`);
}

class CountedStatement {
  constructor(
    readonly real: D1PreparedStatement,
    readonly sql: string,
  ) {}

  bind(...values: unknown[]): CountedStatement {
    return new CountedStatement(this.real.bind(...values), this.sql);
  }

  async all<T>(): Promise<D1Result<T>> {
    const result = await this.real.all<T>();
    record(this.sql, result.meta);
    return result;
  }

  async run<T>(): Promise<D1Result<T>> {
    const result = await this.real.run<T>();
    record(this.sql, result.meta);
    return result;
  }

  /** first() reports no meta, so it goes through all(): the same single statement. */
  async first<T>(column?: string): Promise<T | null> {
    const { results } = await this.all<Record<string, unknown>>();
    const row = results[0];
    if (row === undefined) return null;
    return (column === undefined ? row : row[column]) as T;
  }

  async raw<T>(options?: { columnNames?: boolean }): Promise<T[]> {
    record(this.sql, undefined);
    return this.real.raw<T>(options as { columnNames: true }) as Promise<T[]>;
  }
}

function countedD1(db: D1Database): D1Database {
  const wrapped = {
    prepare: (sql: string) => new CountedStatement(db.prepare(sql), sql),
    async batch(statements: CountedStatement[]) {
      counts.d1Batches++;
      const results = await db.batch(statements.map((s) => s.real));
      results.forEach((r, i) => record(statements[i]!.sql, r.meta));
      return results;
    },
    async exec(sql: string) {
      record(sql, undefined);
      return db.exec(sql);
    },
    withSession: () => {
      throw new Error("the counting build does not wrap D1 sessions");
    },
    dump: () => db.dump(),
  };
  return wrapped as unknown as D1Database;
}

// R2 pricing: PutObject, ListObjects, CopyObject and the multipart calls are class A; GetObject
// and HeadObject are class B; DeleteObject is free.
const R2_CLASS: Record<string, "A" | "B" | "free"> = {
  put: "A",
  list: "A",
  createMultipartUpload: "A",
  uploadPart: "A",
  complete: "A",
  get: "B",
  head: "B",
  delete: "free",
  abort: "free",
};

function countR2(op: string): void {
  const cls = R2_CLASS[op];
  if (cls === "A") counts.r2ClassA++;
  else if (cls === "B") counts.r2ClassB++;
  else if (cls === "free") counts.r2Free++;
  if (cls !== undefined) tally(`R2 ${op}`);
}

function countedMethods<T extends object>(target: T, onCall: (name: string) => void, wrapResult?: (name: string, value: unknown) => unknown): T {
  return new Proxy(target, {
    get(t, prop) {
      const value = Reflect.get(t, prop, t);
      if (typeof value !== "function" || typeof prop !== "string") return value;
      return (...args: unknown[]) => {
        onCall(prop);
        const out = Reflect.apply(value as (...a: unknown[]) => unknown, t, args);
        return wrapResult ? wrapResult(prop, out) : out;
      };
    },
  });
}

function countedMultipart(upload: R2MultipartUpload): R2MultipartUpload {
  return countedMethods(upload, countR2);
}

function countedR2(bucket: R2Bucket): R2Bucket {
  return countedMethods(bucket, countR2, (name, out) => {
    if (name === "createMultipartUpload") return (out as Promise<R2MultipartUpload>).then(countedMultipart);
    if (name === "resumeMultipartUpload") return countedMultipart(out as R2MultipartUpload);
    return out;
  });
}

/** Every RPC method call (and fetch) on a stub is one billed Durable Object request. */
function countedStub(stub: DurableObjectStub): DurableObjectStub {
  return countedMethods(stub, (name) => {
    counts.doRequests++;
    tally(`DO ${name}`);
  });
}

function countedHub(ns: Env["MESH_HUB"]): Env["MESH_HUB"] {
  return new Proxy(ns, {
    get(t, prop) {
      const value = Reflect.get(t, prop, t);
      if (typeof value !== "function") return value;
      if (prop === "get" || prop === "getByName") {
        return (...args: unknown[]) => countedStub(Reflect.apply(value, t, args) as DurableObjectStub);
      }
      return (...args: unknown[]) => Reflect.apply(value, t, args);
    },
  });
}

const wrappedEnvs = new WeakMap<Env, Env>();

function counted(env: Env): Env {
  let wrapped = wrappedEnvs.get(env);
  if (wrapped === undefined) {
    wrapped = { ...env, DB: countedD1(env.DB), BUCKET: countedR2(env.BUCKET), MESH_HUB: countedHub(env.MESH_HUB) };
    wrappedEnvs.set(env, wrapped);
  }
  return wrapped;
}

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    if (new URL(request.url).pathname === "/__bench/counts") {
      const body = JSON.stringify(counts);
      if (request.method === "POST") counts = zero();
      return new Response(body, { headers: { "Content-Type": "application/json" } });
    }
    return meshbox.fetch(request, counted(env), ctx);
  },
  async scheduled(controller: ScheduledController, env: Env, ctx: ExecutionContext): Promise<void> {
    await meshbox.scheduled(controller, counted(env), ctx);
  },
} satisfies ExportedHandler<Env>;
