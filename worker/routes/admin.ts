// Admin API under /sync/admin/ (requireAdmin: Bearer ADMIN_TOKEN runs first in the route table).
// JSON in and out; mistakes are HttpErrors. Handlers stay thin: validate, call storage or the
// hub, shape the answer.
import type { Env } from "../env";
import type { Handler } from "../request-context";
import { badRequest, HttpError, notFound } from "../lib/errors";
import { DEFAULTS, readConfig } from "../lib/config";
import { readBodyWithin, readJsonObject } from "../lib/body";
import { normalizePath } from "../lib/paths";
import { issueChecksummedMeshId, validateMeshId } from "../lib/mesh-id";
import { meshHub } from "../hub-client";
import { createApiKey, listApiKeys, revokeApiKey } from "../identity/api-keys";
import { listSessions as listSessionRecords, revokeSession as revokeSessionRecord } from "../identity/sessions";
import { readMeshStats } from "../operations/mesh-stats";
import { migrateUpstream } from "../operations/upstream-migration";

import { listMeshesOverShards as listMeshRows, readTenantUsage, type MeshSort, type SortOrder } from "../operations/mesh-list";
import { DEFAULT_WIPE_BUDGET_MS, DEFAULT_WIPE_MAX_PAGES, deleteMeshUsage, wipeMeshData } from "../operations/mesh-wipe";
import { ADMIN_RECONCILE_BUDGET_MS, ADMIN_RECONCILE_MAX_PAGES, reconcileMesh as reconcileMeshIndex } from "../operations/reconcile";
import { exportMeshArchive } from "../operations/mesh-export";
import { importMeshArchive, meshHoldsAnything } from "../operations/mesh-import";
import { recoveryTotals } from "../objects/recovery";
import { firstHourOf, hasUsageRow, readHourlyActivity } from "../objects/usage";
import { runMaintenance } from "./maintenance";
import { indexDbFor } from "../shards/mesh-index-db";

const json = (body: unknown, status = 200): Response =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** A hub that does not answer is the server's trouble, not the caller's: 503, retry. */
async function fromHub<T>(mesh: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    console.error(JSON.stringify({ level: "error", msg: "hub call failed", mesh, error: String(err) }));
    throw new HttpError("unavailable", "The mesh's hub did not answer; retry.");
  }
}

/** A body some routes take optionally: none (or an empty one) reads as {}. */
async function readOptionalJson(request: Request): Promise<Record<string, unknown>> {
  const bytes = await readBodyWithin(request, DEFAULTS.limits.jsonBody, "JSON body");
  if (bytes.byteLength === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw badRequest("The request body is not valid JSON.");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw badRequest("The request body must be a JSON object.");
  }
  return value as Record<string, unknown>;
}

// Key ids are 16 hex characters and jtis are opaque but short; anything else cannot exist.
const ID_PARAM = /^[A-Za-z0-9_-]{1,128}$/;

function idParam(value: unknown, what: string): string {
  if (typeof value !== "string" || !ID_PARAM.test(value)) throw badRequest(`The ${what} is malformed.`);
  return value;
}

export const listKeys: Handler = async (_request, env) => json({ keys: await listApiKeys(env.DB) });

export const createKey: Handler = async (request, env) => {
  const body = await readJsonObject(request, DEFAULTS.limits.jsonBody);
  const created = await createApiKey(env.DB, {
    name: body.name as string,
    meshPattern: body.meshPattern as string,
    access: (body.access ?? "full") as "full" | "readonly",
  });
  return json(created, 201);
};

export const revokeKey: Handler = async (request, env) => {
  const id = idParam(request.params.id, "key id");
  const revoked = await revokeApiKey(env, id);
  if (revoked === null) throw notFound(`No API key has the id ${id}.`);
  return json({ key: revoked });
};

const TRUE = new Set(["1", "true", "yes"]);

export const listSessions: Handler = async (request, env) => {
  const { mesh, includeExpired, limit } = request.query;
  if (Array.isArray(mesh) || Array.isArray(includeExpired) || Array.isArray(limit)) {
    throw badRequest("Give each query parameter at most once.");
  }
  let max: number | undefined;
  if (limit !== undefined) {
    if (!/^\d{1,5}$/.test(limit) || Number(limit) < 1) throw badRequest("limit must be a positive integer.");
    max = Number(limit);
  }
  const sessions = await listSessionRecords(env.DB, {
    meshPattern: mesh === undefined || mesh === "" ? undefined : mesh,
    includeExpired: includeExpired !== undefined && TRUE.has(includeExpired),
    limit: max,
  });
  return json({ sessions });
};

export const revokeSession: Handler = async (request, env) => {
  const jti = idParam(request.params.jti, "session id");
  const revoked = await revokeSessionRecord(env, jti);
  if (revoked === null) throw notFound(`No session has the id ${jti}.`);
  return json({ session: revoked });
};

async function readMeshOrNotFound(env: Env, mesh: string) {
  const [stored, hub, holdsAnything] = await Promise.all([
    readMeshStats(indexDbFor(env, mesh), mesh),
    fromHub(mesh, async () => meshHub(env, mesh).stats()),
    meshHoldsAnything(env, mesh),
  ]);
  // A typo'd mesh id must not read as an empty mesh (stats of zeros, a "complete" wipe). A mesh
  // with a usage row (an evicted one, or a wipe that did not finish) still exists.
  const known = holdsAnything || hub.connected > 0 || stored.lastWriteAt !== null || stored.evictedAt !== null;
  if (!known) throw notFound("no such mesh");
  return { stored, hub };
}

export const meshStats: Handler = async (request, env) => {
  const mesh = request.meshId;
  const { stored, hub } = await readMeshOrNotFound(env, mesh);
  return json({
    mesh,
    objects: stored.objects,
    bytes: stored.bytes,
    tombstones: stored.tombstones,
    storedFiles: stored.storedFiles,
    storedBytes: stored.storedBytes,
    lastWriteAt: iso(stored.lastWriteAt),
    lastReadAt: iso(stored.lastReadAt),
    evictedAt: iso(stored.evictedAt),
    evictedRoots: stored.evictedRoots,
    hub: {
      connected: hub.connected,
      seq: hub.seq,
      currentGeneration: hub.currentGeneration,
      controlObjects: hub.controlObjects,
      controlBytes: hub.controlBytes,
    },
  });
};

export const wipeMesh: Handler = async (request, env) => {
  const mesh = request.meshId;
  const { stored, hub: before } = await readMeshOrNotFound(env, mesh);
  if (new URL(request.url).searchParams.get("dryRun") === "1") {
    return json({
      mesh,
      dryRun: true,
      wouldRemove: {
        indexRows: stored.objects + stored.tombstones,
        storedFiles: stored.storedFiles,
        controlObjects: before.controlObjects,
        sockets: before.connected,
      },
    });
  }
  // The hub first: it closes the mesh's sockets and drops the control objects (manifest
  // included), so no device keeps syncing against a half-wiped mesh.
  const hub = await fromHub(mesh, async () => meshHub(env, mesh).wipe());
  const data = await wipeMeshData(env.BUCKET, indexDbFor(env, mesh), mesh, {
    deadline: Date.now() + DEFAULT_WIPE_BUDGET_MS,
    maxPages: DEFAULT_WIPE_MAX_PAGES,
  });
  if (data.complete) await deleteMeshUsage(indexDbFor(env, mesh), mesh);
  return json({
    mesh,
    complete: data.complete,
    r2Objects: data.r2Objects,
    indexRows: data.indexRows,
    indexedFolders: data.indexedFolders,
    storedFiles: data.storedFiles,
    hub: { controlObjects: hub.controlObjects, snapshots: hub.snapshots, closedSockets: hub.closedSockets },
  });
};

/** Optional body `{ startAfter }`: the resumeAfter of an earlier incomplete run. */
export const reconcileMesh: Handler = async (request, env) => {
  const { startAfter } = await readOptionalJson(request);
  if (startAfter !== undefined && startAfter !== "" && typeof startAfter !== "string") {
    throw badRequest("startAfter must be a path (the resumeAfter of an earlier run).");
  }
  const report = await reconcileMeshIndex(env, request.meshId, {
    deadline: Date.now() + ADMIN_RECONCILE_BUDGET_MS,
    maxPages: ADMIN_RECONCILE_MAX_PAGES,
    startAfter: typeof startAfter === "string" && startAfter !== "" ? normalizePath(startAfter) : undefined,
  });
  return json(report);
};

export const runMaintenanceNow: Handler = async (_request, env) => {
  return json(await runMaintenance(env, "admin"));
};

export const issueMeshId: Handler = async (_request, env) => {
  const secret = env.MESH_ID_CHECKSUM_SECRET;
  if (secret === undefined || secret === "") {
    throw new HttpError(
      "unavailable",
      "Checksummed mesh ids need MESH_ID_CHECKSUM_SECRET: set it with `wrangler secret put MESH_ID_CHECKSUM_SECRET`.",
    );
  }
  return json({ meshId: await issueChecksummedMeshId(secret) }, 201);
};

/** Streams the mesh as a tar archive (docs/ARCHIVE.md); 404 for a mesh that holds nothing. */
export const exportMesh: Handler = async (request, env, ctx) => {
  const mesh = request.meshId;
  if (!(await fromHub(mesh, () => meshHoldsAnything(env, mesh)))) throw notFound("no such mesh");
  const body = await fromHub(mesh, () => exportMeshArchive(env, mesh, (p) => ctx.waitUntil(p)));
  return new Response(body, {
    status: 200,
    headers: {
      "Content-Type": "application/x-tar",
      "Content-Disposition": `attachment; filename="${mesh.replace(/[^A-Za-z0-9_.-]/g, "_")}.tar"`,
      "Cache-Control": "no-store",
    },
  });
};

/** Restores an archive into an empty mesh (409 unless empty or ?replace=1); 400 leaves it empty. */
export const importMesh: Handler = async (request, env) => {
  const { replace } = request.query;
  if (Array.isArray(replace)) throw badRequest("Give replace at most once.");
  if (replace !== undefined && !["1", "0", "true", "false"].includes(replace)) throw badRequest("replace must be 1 or 0.");
  if (request.body === null) throw badRequest("The request body must be a mesh archive (application/x-tar).");
  const summary = await importMeshArchive(env, request.meshId, request.body, { replace: replace === "1" || replace === "true" });
  return json({ ...summary, replaced: replace === "1" || replace === "true" }, 201);
};

/** POST /admin/migrate-upstream `{ mesh? | all?, dryRun?, cursor? }`: one page of the upstream move. */
export const migrateFromUpstream: Handler = async (request, env) => {
  const body = await readJsonObject(request, 64 * 1024, { allowEmpty: true });
  const { mesh, all, dryRun, cursor } = body;
  if (mesh !== undefined && (typeof mesh !== "string" || mesh === "")) throw badRequest("mesh must be a non-empty string.");
  if (all !== undefined && all !== true) throw badRequest("all must be true when given.");
  if ((mesh === undefined) === (all === undefined)) throw badRequest("Give exactly one of mesh or all.");
  if (dryRun !== undefined && typeof dryRun !== "boolean") throw badRequest("dryRun must be a boolean.");
  if (cursor !== undefined && (typeof cursor !== "string" || mesh !== undefined)) throw badRequest("cursor must be a string, and only with all.");
  if (typeof mesh === "string") validateMeshId(mesh);
  return json(await migrateUpstream(env, { mesh: mesh as string | undefined, all: all === true, dryRun: dryRun === true, cursor: cursor as string | undefined }));
};

/** GET /admin/recovery: the tenant's recovery wrappers against their quota and expiry. */
export const recoveryStats: Handler = async (_request, env) => {
  const config = readConfig(env);
  const totals = await recoveryTotals(env.DB);
  return json({
    count: totals.count,
    bytes: totals.bytes,
    maxCount: config.recoveryMaxCount,
    maxBytes: config.recoveryMaxBytes,
    ttlDays: config.recoveryTtlDays,
  });
};

const MESH_SORTS: readonly MeshSort[] = ["lastWrite", "bytes", "objects"];
const ORDERS: readonly SortOrder[] = ["desc", "asc"];
const LIST_DEFAULT_LIMIT = 50;
const LIST_MAX_LIMIT = 500;
const PREFIX = /^[A-Za-z0-9._~-]{0,128}$/;

const encodeCursor = (c: { s: MeshSort; o: SortOrder; v: number; m: string }): string =>
  btoa(JSON.stringify(c)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

function decodeCursor(raw: string, sort: MeshSort, order: SortOrder): { value: number; mesh: string } {
  let c: unknown;
  try {
    c = JSON.parse(atob(raw.replace(/-/g, "+").replace(/_/g, "/")));
  } catch {
    throw badRequest("The cursor is malformed.");
  }
  const v = c as { s?: unknown; o?: unknown; v?: unknown; m?: unknown };
  if (typeof c !== "object" || c === null || typeof v.v !== "number" || !Number.isFinite(v.v) || typeof v.m !== "string") {
    throw badRequest("The cursor is malformed.");
  }
  if (v.s !== sort || v.o !== order) throw badRequest("The cursor belongs to another sort or order; repeat the sort and order it came with.");
  return { value: v.v, mesh: v.m };
}

export const listMeshes: Handler = async (request, env) => {
  const params = new URL(request.url).searchParams;
  for (const name of ["prefix", "sort", "order", "limit", "cursor"]) {
    if (params.getAll(name).length > 1) throw badRequest("Give each query parameter at most once.");
  }
  const prefix = params.get("prefix") ?? "";
  if (!PREFIX.test(prefix)) throw badRequest("prefix must be at most 128 characters of [A-Za-z0-9._~-].");
  const sort = (params.get("sort") ?? "lastWrite") as MeshSort;
  if (!MESH_SORTS.includes(sort)) throw badRequest(`sort must be one of ${MESH_SORTS.join(", ")}.`);
  const order = (params.get("order") ?? "desc") as SortOrder;
  if (!ORDERS.includes(order)) throw badRequest(`order must be one of ${ORDERS.join(", ")}.`);
  const rawLimit = params.get("limit");
  let limit = LIST_DEFAULT_LIMIT;
  if (rawLimit !== null) {
    if (!/^\d{1,4}$/.test(rawLimit) || Number(rawLimit) < 1 || Number(rawLimit) > LIST_MAX_LIMIT) {
      throw badRequest(`limit must be an integer from 1 to ${LIST_MAX_LIMIT}.`);
    }
    limit = Number(rawLimit);
  }
  const rawCursor = params.get("cursor");
  const after = rawCursor === null || rawCursor === "" ? null : decodeCursor(rawCursor, sort, order);
  const { meshes, last } = await listMeshRows(env, { prefix, sort, order, limit, after });
  return json({
    meshes: meshes.map((m) => ({ ...m, lastWriteAt: iso(m.lastWriteAt), lastReadAt: iso(m.lastReadAt) })),
    nextCursor: last === null ? null : encodeCursor({ s: sort, o: order, v: last.value, m: last.mesh }),
  });
};

export const tenantUsage: Handler = async (_request, env) => json(await readTenantUsage(env));

const ACTIVITY_MAX_HOURS = 48;

/** GET /admin/meshes/<mesh>/activity?hours=24: writes and bytes per hour, oldest first, zeros filled. */
export const meshActivity: Handler = async (request, env) => {
  const mesh = request.meshId;
  const params = new URL(request.url).searchParams;
  if (params.getAll("hours").length > 1) throw badRequest("Give hours at most once.");
  const raw = params.get("hours");
  let hours = 24;
  if (raw !== null) {
    if (!/^\d{1,2}$/.test(raw) || Number(raw) < 1 || Number(raw) > ACTIVITY_MAX_HOURS) {
      throw badRequest(`hours must be an integer from 1 to ${ACTIVITY_MAX_HOURS}.`);
    }
    hours = Number(raw);
  }
  const now = Date.now();
  // The hub's counts are the newest (D1 gets them from its alarm, up to a minute later).
  const fromHub = meshHub(env, mesh)
    .activity(mesh, firstHourOf(hours, now))
    .catch((err: unknown) => {
      console.error(JSON.stringify({ level: "warn", msg: "hub activity read failed", mesh, error: String(err) }));
      return [];
    });
  const db = indexDbFor(env, mesh);
  const [buckets, known] = await Promise.all([readHourlyActivity(db, mesh, hours, now, fromHub), hasUsageRow(db, mesh)]);
  if (!known && buckets.every((b) => b.writes === 0)) throw notFound("no such mesh");
  return json({
    mesh,
    hours,
    buckets: buckets.map((b) => ({ hour: new Date(b.hourStart).toISOString(), writes: b.writes, bytes: b.bytes })),
  });
};
