// Scheduled maintenance (the cron in wrangler.toml) and its on-demand twin, the admin route
// POST /sync/admin/maintenance. One run: delete expired sessions (and their socket-mesh rows),
// purge recovery wrappers past RECOVERY_TTL_DAYS, purge change-file bodies whose delete grace has
// run out, prune hourly write counters past 48 h, evict idle meshes (only when IDLE_MESH_TTL_DAYS
// is set), and reconcile the index of a few sampled meshes. Every task is bounded in count and
// time, a failed task does not stop the others, and each run logs exactly one JSON line of what it did.
import type { Env } from "../env";
import { readConfig } from "../lib/config";
import { meshHub } from "../hub-client";
import { deleteExpiredSessions } from "../identity/sessions";
import { deleteStaleRateLimits } from "../identity/rate-limit";
import { deleteOrphanedSocketMeshes } from "../identity/socket-meshes";
import { purgeExpiredRecoveryWrappers } from "../objects/recovery";
import { purgeExpiredTombstones } from "../objects/files";
import { pruneHourlyActivity } from "../objects/usage";
import { findIdleMeshes, markEvicted, sampleMeshes } from "../operations/maintenance";
import { listMeshRoots, wipeMeshData } from "../operations/mesh-wipe";
import { listControlObjects } from "../objects/control-objects";
import { reconcileMesh, type ReconcileReport } from "../operations/reconcile";
import { indexDbFor } from "../shards/mesh-index-db";
import { meshesOverShards, sumOverShards } from "../shards/shard-maintenance";

const DAY_MS = 86_400_000;
/** Idle meshes evicted per run; the rest wait for the next run (every 5 minutes). */
export const IDLE_MESHES_PER_RUN = 5;
/** The dashboard charts 24 hours; twice that is kept so a chart read near a boundary is whole. */
export const HOURLY_KEEP_HOURS = 48;
/** Meshes whose index is reconciled per run. */
export const RECONCILE_SAMPLE = 3;
/** Wall-clock budget of one run's idle cleanup and reconcile (cron invocations may run longer). */
const RUN_BUDGET_MS = 60_000;
const PER_MESH_BUDGET_MS = 10_000;
const WIPE_PAGES_PER_MESH = 20;
const RECONCILE_PAGES_PER_MESH = 10;
// Subrequests add up over a run (every R2 and D1 call counts); HEADs are the unbounded-looking part.
const RECONCILE_HEADS_PER_MESH = 50;

export interface EvictedMesh {
  mesh: string;
  roots: string[];
  r2Objects: number;
  indexRows: number;
  controlObjects: number;
  /** False when the wipe ran out of budget; the mesh stays idle and the next run finishes it. */
  complete: boolean;
  /** False when a write arrived during the cleanup: the mesh lives again, no record is kept. */
  recorded: boolean;
}

export interface MaintenanceReport {
  trigger: "cron" | "admin";
  cron: string | null;
  /** ISO-8601 of the run's clock. */
  at: string;
  sessionsDeleted: number;
  /** Rows of session_socket_meshes whose session is gone. */
  socketMeshesDeleted: number;
  rateLimitBucketsDeleted: number;
  /** Recovery wrappers older than RECOVERY_TTL_DAYS deleted (0 when no TTL is set). */
  recoveryWrappersPurged: number;
  tombstonesPurged: number;
  /** Hourly write counters (the dashboard's chart) older than HOURLY_KEEP_HOURS deleted. */
  hourlyBucketsPruned: number;
  idleCleanup: { enabled: false } | { enabled: true; ttlDays: number; evicted: EvictedMesh[] };
  reconciled: ReconcileReport[];
  errors: { task: string; error: string }[];
  ms: number;
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

async function evictIdleMeshes(env: Env, ttlDays: number, now: number, deadline: number, report: MaintenanceReport): Promise<EvictedMesh[]> {
  const evicted: EvictedMesh[] = [];
  const cutoff = now - ttlDays * DAY_MS;
  const idle = await meshesOverShards(
    env,
    (db) => findIdleMeshes(db, cutoff, IDLE_MESHES_PER_RUN),
    (a, b) => a.lastWriteAt - b.lastWriteAt,
    IDLE_MESHES_PER_RUN,
  );
  for (const { mesh, lastWriteAt } of idle) {
    if (Date.now() > deadline) break;
    try {
      // Roots first: they are what `<root>/evicted.json` will answer for.
      const control = await listControlObjects(env, mesh, "/");
      const roots = await listMeshRoots(env.BUCKET, indexDbFor(env, mesh), mesh, control.map((c) => c.path));
      const hub = await meshHub(env, mesh).wipe();
      const data = await wipeMeshData(env.BUCKET, indexDbFor(env, mesh), mesh, {
        deadline: Math.min(deadline, Date.now() + PER_MESH_BUDGET_MS),
        maxPages: WIPE_PAGES_PER_MESH,
      });
      const recorded = data.complete ? await markEvicted(indexDbFor(env, mesh), mesh, lastWriteAt, now, roots) : false;
      evicted.push({
        mesh,
        roots,
        r2Objects: data.r2Objects,
        indexRows: data.indexRows,
        controlObjects: hub.controlObjects,
        complete: data.complete,
        recorded,
      });
    } catch (err) {
      report.errors.push({ task: `idle-cleanup ${mesh}`, error: describe(err) });
    }
  }
  return evicted;
}

async function reconcileSample(env: Env, now: number, deadline: number, report: MaintenanceReport): Promise<void> {
  const sample = await meshesOverShards(
    env,
    async (db) => (await sampleMeshes(db, RECONCILE_SAMPLE)).map((mesh) => ({ mesh, order: Math.random() })),
    (a, b) => a.order - b.order,
    RECONCILE_SAMPLE,
  );
  for (const { mesh } of sample) {
    if (Date.now() > deadline) break;
    try {
      report.reconciled.push(
        await reconcileMesh(
          env,
          mesh,
          {
            deadline: Math.min(deadline, Date.now() + PER_MESH_BUDGET_MS),
            maxPages: RECONCILE_PAGES_PER_MESH,
            maxHeads: RECONCILE_HEADS_PER_MESH,
          },
          now,
        ),
      );
    } catch (err) {
      report.errors.push({ task: `reconcile ${mesh}`, error: describe(err) });
    }
  }
}

/** Runs every maintenance task once and says what each did. Never throws for a task's failure. */
export async function runMaintenance(
  env: Env,
  trigger: "cron" | "admin",
  now = Date.now(),
  cron: string | null = null,
): Promise<MaintenanceReport> {
  const started = Date.now();
  const deadline = started + RUN_BUDGET_MS;
  const config = readConfig(env);
  const report: MaintenanceReport = {
    trigger,
    cron,
    at: new Date(now).toISOString(),
    sessionsDeleted: 0,
    socketMeshesDeleted: 0,
    rateLimitBucketsDeleted: 0,
    recoveryWrappersPurged: 0,
    tombstonesPurged: 0,
    hourlyBucketsPruned: 0,
    idleCleanup: { enabled: false },
    reconciled: [],
    errors: [],
    ms: 0,
  };
  try {
    report.sessionsDeleted = await deleteExpiredSessions(env.DB, now);
  } catch (err) {
    report.errors.push({ task: "sessions", error: describe(err) });
  }
  try {
    report.socketMeshesDeleted = await deleteOrphanedSocketMeshes(env.DB);
  } catch (err) {
    report.errors.push({ task: "socket-meshes", error: describe(err) });
  }
  if (config.recoveryTtlDays !== null) {
    try {
      report.recoveryWrappersPurged = await purgeExpiredRecoveryWrappers(env, now - config.recoveryTtlDays * DAY_MS);
    } catch (err) {
      report.errors.push({ task: "recovery-expiry", error: describe(err) });
    }
  }
  try {
    report.rateLimitBucketsDeleted = await deleteStaleRateLimits(env.DB, now);
  } catch (err) {
    report.errors.push({ task: "rate-limits", error: describe(err) });
  }
  try {
    report.tombstonesPurged = await purgeExpiredTombstones(env, now);
  } catch (err) {
    report.errors.push({ task: "tombstones", error: describe(err) });
  }
  try {
    report.hourlyBucketsPruned = await sumOverShards(env, (db) => pruneHourlyActivity(db, now - HOURLY_KEEP_HOURS * 3_600_000));
  } catch (err) {
    report.errors.push({ task: "hourly-activity", error: describe(err) });
  }
  if (config.idleMeshTtlDays !== null) {
    const ttlDays = config.idleMeshTtlDays;
    try {
      report.idleCleanup = { enabled: true, ttlDays, evicted: await evictIdleMeshes(env, ttlDays, now, deadline, report) };
    } catch (err) {
      report.idleCleanup = { enabled: true, ttlDays, evicted: [] };
      report.errors.push({ task: "idle-cleanup", error: describe(err) });
    }
  }
  try {
    await reconcileSample(env, now, deadline, report);
  } catch (err) {
    report.errors.push({ task: "reconcile", error: describe(err) });
  }
  report.ms = Date.now() - started;
  console.log(JSON.stringify({ level: report.errors.length > 0 ? "warn" : "info", msg: "maintenance", ...report }));
  return report;
}

export async function runScheduled(controller: ScheduledController, env: Env, _ctx: ExecutionContext): Promise<void> {
  await runMaintenance(env, "cron", controller.scheduledTime, controller.cron);
}
