// The OpenAPI 3.1 description of every HTTP route (served at <prefix>/openapi.json, no auth).
// A TS module rather than a JSON file so wrangler and the e2e source copy bundle it as is.
// Paths are relative to the mount prefix (servers[0].url). HEAD is served for every GET.
import { VERSION } from "./lib/version";

type Method = "get" | "post" | "put" | "delete";
type Auth = "none" | "mesh" | "admin";
interface Op {
  summary: string;
  auth: Auth;
  /** Status codes beyond 200 and the common errors. */
  statuses?: Record<string, string>;
  query?: string[];
  body?: "json" | "bytes" | "tar";
  produces?: "json" | "bytes" | "tar" | "html" | "js" | "css";
}

const OPS: Record<string, Partial<Record<Method, Op>>> = {
  "/": { get: { summary: "Landing document: service, version, docs, auth modes", auth: "none" } },
  "/openapi.json": { get: { summary: "This OpenAPI description", auth: "none" } },
  "/health": { get: { summary: "Service liveness", auth: "none" } },
  "/auth/session": {
    post: { summary: "Exchange an API key for a session JWT", auth: "none", body: "json", statuses: { "201": "Session created", "429": "Rate limited" } },
    delete: { summary: "Revoke the caller's own session", auth: "mesh" },
  },
  "/io/{mesh}/health": { get: { summary: "Mesh health", auth: "mesh" } },
  "/io/{mesh}/file": {
    get: { summary: "Read a file", auth: "mesh", query: ["path"], produces: "bytes", statuses: { "304": "Not modified", "404": "No such file" } },
    put: { summary: "Write a file (conditional with If-Match / If-None-Match)", auth: "mesh", query: ["path"], body: "bytes", statuses: { "201": "Written", "412": "Precondition failed", "413": "Too large" } },
    delete: { summary: "Delete a file", auth: "mesh", query: ["path"], statuses: { "204": "Deleted", "404": "No such file" } },
  },
  "/io/{mesh}/metadata": { post: { summary: "File metadata", auth: "mesh", body: "json" } },
  "/io/{mesh}/list-files": { post: { summary: "List files of a folder", auth: "mesh", body: "json" } },
  "/io/{mesh}/list-folders": { post: { summary: "List folders of a folder", auth: "mesh", body: "json" } },
  "/io/{mesh}/ensure-folder": { post: { summary: "Ensure a folder exists", auth: "mesh", body: "json" } },
  "/io/{mesh}/stored-file": {
    get: { summary: "Read a stored file", auth: "mesh", query: ["path"], produces: "bytes", statuses: { "404": "No such stored file" } },
    put: { summary: "Write a stored file", auth: "mesh", query: ["path"], body: "bytes", statuses: { "201": "Stored", "413": "Too large or over quota" } },
    delete: { summary: "Delete a stored file", auth: "mesh", query: ["path"], statuses: { "204": "Deleted" } },
  },
  "/io/{mesh}/stored-file-metadata": { post: { summary: "Stored file metadata", auth: "mesh", body: "json" } },
  "/notify/{mesh}/health": { get: { summary: "Push channel health", auth: "mesh" } },
  "/notify/{mesh}": { get: { summary: "WebSocket upgrade for push invalidations", auth: "mesh", statuses: { "101": "Switching protocols", "426": "Upgrade required" } } },
  "/recovery/{locator}": {
    get: { summary: "Read a recovery wrapper (the locator is the capability)", auth: "none", produces: "bytes", statuses: { "404": "No such wrapper" } },
    put: { summary: "Write a recovery wrapper once", auth: "none", body: "bytes", statuses: { "201": "Written", "409": "Already exists" } },
  },
  "/admin/keys": {
    get: { summary: "List API keys", auth: "admin" },
    post: { summary: "Create an API key (shown once)", auth: "admin", body: "json", statuses: { "201": "Created" } },
  },
  "/admin/keys/{id}": { delete: { summary: "Revoke an API key", auth: "admin", statuses: { "404": "No such key" } } },
  "/admin/sessions": { get: { summary: "List sessions", auth: "admin", query: ["mesh", "includeExpired", "limit"] } },
  "/admin/sessions/{jti}": { delete: { summary: "Revoke a session", auth: "admin", statuses: { "404": "No such session" } } },
  "/admin/meshes": { get: { summary: "List meshes (keyset paging)", auth: "admin", query: ["prefix", "sort", "order", "limit", "cursor"] } },
  "/admin/usage": { get: { summary: "Tenant-wide usage totals", auth: "admin" } },
  "/admin/meshes/{mesh}": {
    get: { summary: "One mesh's stats", auth: "admin", statuses: { "404": "No such mesh" } },
    delete: { summary: "Wipe a mesh (?dryRun=1 reports what it would remove)", auth: "admin", query: ["dryRun"], statuses: { "404": "No such mesh" } },
  },
  "/admin/meshes/{mesh}/reconcile": { post: { summary: "Repair a mesh's index from R2 and the hub", auth: "admin", body: "json" } },
  "/admin/meshes/{mesh}/export": { get: { summary: "Export a mesh as a tar archive", auth: "admin", produces: "tar", statuses: { "404": "No such mesh" } } },
  "/admin/meshes/{mesh}/import": { post: { summary: "Import a mesh archive", auth: "admin", query: ["replace"], body: "tar", statuses: { "201": "Imported", "409": "Mesh not empty" } } },
  "/admin/maintenance": { post: { summary: "Run maintenance now", auth: "admin", body: "json" } },
  "/admin/grants": {
    get: { summary: "List mesh grants", auth: "admin" },
    post: { summary: "Add a mesh grant", auth: "admin", body: "json", statuses: { "201": "Granted" } },
  },
  "/admin/grants/{id}": { delete: { summary: "Revoke a mesh grant", auth: "admin", statuses: { "404": "No such grant" } } },
  "/admin/meshes/{mesh}/activity": {
    get: { summary: "Writes and bytes per hour, oldest first, zeros filled (?hours=1..48, default 24)", auth: "admin", query: ["hours"], statuses: { "404": "No such mesh" } },
  },
  "/admin/ui": { get: { summary: "The admin dashboard page (signs in with the admin token)", auth: "none", produces: "html" } },
  "/admin/ui/app.js": { get: { summary: "The admin dashboard's script", auth: "none", produces: "js" } },
  "/admin/ui/app.css": { get: { summary: "The admin dashboard's styles", auth: "none", produces: "css" } },
  "/admin/shards": {
    get: { summary: "Index shards: meshes and objects per shard, availability, moves in flight", auth: "admin" },
  },
  "/admin/shards/move": {
    post: {
      summary: "Move a mesh's index to another shard online ({ mesh, shard })",
      auth: "admin",
      body: "json",
      statuses: { "400": "Bad shard, or the index is not sharded", "404": "Mesh not placed", "409": "Already there, or a move in progress" },
    },
  },
  "/admin/shards/rebalance": {
    post: { summary: "Plan (dryRun) or run moves from the fullest to the emptiest shard until within one mesh", auth: "admin", body: "json" },
  },
  "/admin/recovery": { get: { summary: "Recovery wrappers against their quota and expiry", auth: "admin" } },
  "/admin/migrate-upstream": {
    post: { summary: "Move meshes in from bound upstream-runtime resources (LEGACY_DB, LEGACY_FILES), a page per call", auth: "admin", body: "json", statuses: { "503": "Legacy bindings not configured" } },
  },
  "/admin/mesh-ids": { post: { summary: "Issue a checksummed mesh id", auth: "admin", statuses: { "201": "Issued" } } },
};

const MEDIA = {
  json: "application/json",
  bytes: "application/octet-stream",
  tar: "application/x-tar",
  html: "text/html",
  js: "text/javascript",
  css: "text/css",
} as const;
const errorRef = { $ref: "#/components/responses/Error" };

function operation(path: string, method: Method, op: Op): Record<string, unknown> {
  const params = [...path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: "path", required: true, schema: { type: "string" } }));
  const query = (op.query ?? []).map((name) => ({ name, in: "query", required: name === "path", schema: { type: "string" } }));
  const responses: Record<string, unknown> = {
    "200": { description: "OK", content: { [MEDIA[op.produces ?? "json"]]: { schema: {} } } },
    "400": errorRef,
    "405": errorRef,
  };
  if (op.auth !== "none") {
    responses["401"] = errorRef;
    responses["403"] = errorRef;
  }
  for (const [code, description] of Object.entries(op.statuses ?? {})) {
    responses[code] = Number(code) >= 400 ? { description, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } } : { description };
  }
  return {
    operationId: `${method}${path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? "").toUpperCase())}`,
    summary: op.summary,
    ...(params.length + query.length > 0 ? { parameters: [...params, ...query] } : {}),
    ...(op.body ? { requestBody: { required: op.body !== "json", content: { [MEDIA[op.body]]: { schema: {} } } } } : {}),
    responses,
    security: op.auth === "none" ? [] : op.auth === "admin" ? [{ adminToken: [] }] : [{ session: [] }, { meshBearer: [] }],
  };
}

export function openApiDocument(prefix: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [path, ops] of Object.entries(OPS)) {
    const item: Record<string, unknown> = {};
    for (const [method, op] of Object.entries(ops) as [Method, Op][]) item[method] = operation(path, method, op);
    paths[path] = item;
  }
  return {
    openapi: "3.1.0",
    info: { title: "meshbox", version: VERSION, description: "Sync backend for end-to-end-encrypted local-first apps. See docs/PROTOCOL.md." },
    servers: [{ url: prefix === "/" ? "/" : prefix }],
    paths,
    components: {
      schemas: {
        Error: { type: "object", required: ["error", "message"], properties: { error: { type: "string" }, message: { type: "string" } } },
      },
      responses: {
        Error: { description: "A JSON error", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
      },
      securitySchemes: {
        session: { type: "http", scheme: "bearer", bearerFormat: "JWT" },
        meshBearer: { type: "http", scheme: "bearer" },
        adminToken: { type: "http", scheme: "bearer" },
      },
    },
  };
}
