// Moving meshes in from the upstream Interocitor Workers runtime (/work/shared/UPSTREAM.md): its
// D1 `files` rows (every sync object, bytes inline) and `stored_files` rows (bodies in its R2
// bucket under `r2_key`), read through the optional LEGACY_DB / LEGACY_FILES bindings. One page
// of meshes per call; every mesh goes through MeshInstaller (the archive import's install path),
// so a mesh either arrives whole or is left empty. A mesh meshbox already holds is skipped, which
// makes a re-run idempotent; a mesh whose legacy state is inconsistent is refused and reported,
// never failing the others.
import type { Env } from "../env";
import type { ArchivedControl, ArchivedRoot, ArchivedSnapshot, ControlClass } from "../../durable-objects/hub-api";
import { badRequest, HttpError, unavailable } from "../lib/errors";
import { classifyPath, generationOf, isControlClass, nameOf, normalizeFilePath, normalizePath, parentOf } from "../lib/paths";
import { isValidMeshId } from "../lib/mesh-id";
import { hex, type ArchivedStoredFile } from "./mesh-archive";
import { MeshInstaller, meshHoldsAnything } from "./mesh-import";

/** Meshes handled per call: each is read whole into memory, so a page stays one mesh. */
export const MIGRATION_PAGE_MESHES = 1;

export interface MigrationRequest {
  mesh?: string;
  all?: boolean;
  dryRun: boolean;
  cursor?: string;
}

export type MeshMigrationStatus = "moved" | "would-move" | "already-present" | "refused" | "failed";

export interface MeshMigrationReport {
  mesh: string;
  status: MeshMigrationStatus;
  controlObjects: number;
  objects: number;
  storedFiles: number;
  bytes: number;
  /** Why the mesh was refused or failed (empty otherwise). */
  reasons: string[];
  /** Objects left behind on purpose (uncommitted leftovers), with why. */
  skipped: { path: string; reason: string }[];
}

export interface MigrationPage {
  dryRun: boolean;
  meshes: MeshMigrationReport[];
  nextCursor: string | null;
}

interface LegacyFileRow {
  path: string;
  content: unknown;
  size: number | null;
  modified_time: unknown;
}

type LegacyStoredRow = Record<string, unknown>;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function legacy(env: Env): { db: D1Database; files: R2Bucket } {
  if (!env.LEGACY_DB || !env.LEGACY_FILES) {
    throw unavailable("The upstream migration needs the LEGACY_DB (D1) and LEGACY_FILES (R2) bindings; add them to wrangler.toml and deploy again.");
  }
  return { db: env.LEGACY_DB, files: env.LEGACY_FILES };
}

/** Migrates (or with dryRun, plans) one page of meshes; `nextCursor` is null when all are done. */
export async function migrateUpstream(env: Env, request: MigrationRequest): Promise<MigrationPage> {
  const source = legacy(env);
  let meshes: string[];
  let nextCursor: string | null = null;
  if (request.mesh !== undefined) {
    meshes = [request.mesh];
  } else {
    const rows = await source.db
      .prepare(
        `SELECT prefix FROM (SELECT prefix FROM files UNION SELECT prefix FROM stored_files)
         WHERE prefix > ?1 ORDER BY prefix LIMIT ?2`,
      )
      .bind(request.cursor ?? "", MIGRATION_PAGE_MESHES + 1)
      .all<{ prefix: string }>();
    meshes = rows.results.map((r) => r.prefix).slice(0, MIGRATION_PAGE_MESHES);
    if (rows.results.length > MIGRATION_PAGE_MESHES) nextCursor = meshes[meshes.length - 1] ?? null;
  }
  const reports: MeshMigrationReport[] = [];
  for (const mesh of meshes) reports.push(await migrateMesh(env, source, mesh, request.dryRun));
  return { dryRun: request.dryRun, meshes: reports, nextCursor };
}

interface MeshPlan {
  control: ArchivedControl[];
  objects: { path: string; body: Uint8Array; modifiedAt: number }[];
  stored: { path: string; r2Key: string; size: number; meta: ArchivedStoredFile }[];
  roots: ArchivedRoot[];
  snapshots: ArchivedSnapshot[];
  skipped: { path: string; reason: string }[];
  reasons: string[];
}

async function migrateMesh(env: Env, source: { db: D1Database; files: R2Bucket }, mesh: string, dryRun: boolean): Promise<MeshMigrationReport> {
  const report: MeshMigrationReport = { mesh, status: "refused", controlObjects: 0, objects: 0, storedFiles: 0, bytes: 0, reasons: [], skipped: [] };
  if (!isValidMeshId(mesh)) {
    report.reasons.push("The legacy prefix is not a valid meshbox mesh id.");
    return report;
  }
  let plan: MeshPlan;
  try {
    plan = await planMesh(source, mesh);
  } catch (err) {
    report.reasons.push(err instanceof Error ? err.message : String(err));
    return report;
  }
  if (plan.control.length + plan.objects.length + plan.stored.length + plan.reasons.length + plan.skipped.length === 0) {
    // A mistyped --mesh must not read as "moved, 0 objects".
    report.reasons.push("The legacy database holds nothing for this mesh.");
    return report;
  }
  report.skipped = plan.skipped;
  report.controlObjects = plan.control.length;
  report.objects = plan.objects.length;
  report.storedFiles = plan.stored.length;
  report.bytes =
    plan.control.reduce((n, c) => n + c.body.byteLength, 0) +
    plan.objects.reduce((n, o) => n + o.body.byteLength, 0) +
    plan.stored.reduce((n, s) => n + s.size, 0);
  if (plan.reasons.length > 0) {
    report.reasons = plan.reasons;
    return report;
  }
  if (await meshHoldsAnything(env, mesh)) {
    report.status = "already-present";
    return report;
  }
  if (dryRun) {
    report.status = "would-move";
    return report;
  }
  const installer = new MeshInstaller(env, mesh);
  try {
    await installer.begin({ replace: false });
  } catch (err) {
    report.status = "failed";
    report.reasons.push(err instanceof Error ? err.message : String(err));
    return report;
  }
  try {
    for (const c of plan.control) installer.putControl(c);
    for (const o of plan.objects) {
      await installer.putObject({ path: o.path, size: o.body.byteLength, modifiedAt: o.modifiedAt, contentType: "application/octet-stream" }, o.body);
    }
    for (const s of plan.stored) {
      const body = await source.files.get(s.r2Key);
      if (body === null) throw badRequest(`The stored file ${s.path} has no body at ${s.r2Key} in the legacy bucket.`);
      await installer.putStoredFile({ path: s.path, size: body.size, meta: s.meta }, chunksOf(body.body));
    }
    await installer.publish(plan.roots, plan.snapshots);
    report.status = "moved";
  } catch (err) {
    await installer.rollback();
    report.status = "failed";
    report.reasons.push(err instanceof HttpError || err instanceof Error ? err.message : String(err));
    if (!(err instanceof HttpError)) console.error(JSON.stringify({ level: "error", msg: "upstream migration failed", mesh, error: String(err) }));
  }
  return report;
}

async function* chunksOf(stream: ReadableStream<Uint8Array>): AsyncIterable<Uint8Array> {
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    yield value;
  }
}

function bytesOf(content: unknown): Uint8Array {
  if (content instanceof ArrayBuffer) return new Uint8Array(content);
  if (ArrayBuffer.isView(content)) return new Uint8Array(content.buffer, content.byteOffset, content.byteLength);
  if (Array.isArray(content)) return Uint8Array.from(content as number[]);
  if (typeof content === "string") return encoder.encode(content);
  if (content === null || content === undefined) return new Uint8Array(0);
  throw new Error("content is neither bytes nor text");
}

/** Legacy times are ISO-8601 text (the column says INTEGER); an epoch-ms number is read as is. */
function timeOf(value: unknown): number | null {
  if (typeof value === "number" && Number.isSafeInteger(value) && value > 0) return value;
  if (typeof value === "string") {
    if (/^\d+$/.test(value)) return Number(value);
    const ms = Date.parse(value);
    if (Number.isFinite(ms) && ms > 0) return ms;
  }
  return null;
}

function jsonOf(bytes: Uint8Array): Record<string, unknown> | null {
  try {
    const v = JSON.parse(decoder.decode(bytes)) as unknown;
    return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function pointerTarget(manifestPath: string, body: Uint8Array): { generation: number; generationPath: string } | null {
  const json = jsonOf(body);
  const generation = json?.currentGeneration;
  const file = json?.file;
  if (typeof generation !== "number" || !Number.isSafeInteger(generation) || generation < 0 || typeof file !== "string") return null;
  const folder = parentOf(manifestPath);
  try {
    const path = file.startsWith("/") ? normalizePath(file) : normalizePath(`${folder === "/" ? "" : folder}/${file}`);
    return parentOf(path) === folder && generationOf(path) === generation ? { generation, generationPath: path } : null;
  } catch {
    return null;
  }
}

function snapshotOf(generationBody: Uint8Array): string | null {
  const raw = jsonOf(generationBody)?.snapshotPath;
  if (typeof raw !== "string" || raw === "") return null;
  try {
    return normalizePath(raw);
  } catch {
    return null;
  }
}

function hlcOf(changeName: string): string {
  const at = changeName.indexOf("-chg_");
  return at < 0 ? changeName : changeName.slice(0, at);
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", bytes));
}

/** Reads a mesh's legacy rows and decides what moves, what stays behind and whether to refuse. */
async function planMesh(source: { db: D1Database; files: R2Bucket }, mesh: string): Promise<MeshPlan> {
  const plan: MeshPlan = { control: [], objects: [], stored: [], roots: [], snapshots: [], skipped: [], reasons: [] };
  const rows = await source.db
    .prepare(`SELECT path, content, size, modified_time FROM files WHERE prefix = ?1 ORDER BY path`)
    .bind(mesh)
    .all<LegacyFileRow>();
  const files = new Map<string, { body: Uint8Array; modifiedAt: number }>();
  for (const row of rows.results) {
    let path: string;
    try {
      path = normalizeFilePath(row.path);
    } catch {
      plan.reasons.push(`${JSON.stringify(row.path)} is not a valid path.`);
      continue;
    }
    const modifiedAt = timeOf(row.modified_time);
    if (modifiedAt === null) {
      plan.reasons.push(`${path} has no readable modified_time (${JSON.stringify(row.modified_time)}).`);
      continue;
    }
    files.set(path, { body: bytesOf(row.content), modifiedAt });
  }

  // The committed generation of each root comes from its pointer; everything else follows it.
  const committedGenerations = new Map<string, number>();
  // Roots whose pointer is refused: their generation files are not leftovers, the refusal says why.
  const refusedRoots = new Set<string>();
  for (const [path, file] of files) {
    if (classifyPath(path) !== "manifest") continue;
    const root = parentOf(path);
    refusedRoots.add(root);
    const target = pointerTarget(path, file.body);
    if (target === null) {
      plan.reasons.push(`${path} is not a pointer naming a generation file in its folder (currentGeneration, file).`);
      continue;
    }
    const generation = files.get(target.generationPath);
    if (generation === undefined) {
      plan.reasons.push(`${path} names generation ${target.generation}, but ${target.generationPath} is missing.`);
      continue;
    }
    const snapshotPath = snapshotOf(generation.body);
    if (snapshotPath !== null && !files.has(snapshotPath)) {
      plan.reasons.push(`${target.generationPath} (the committed generation) names the snapshot ${snapshotPath}, which is missing.`);
      continue;
    }
    refusedRoots.delete(root);
    committedGenerations.set(root, target.generation);
    plan.roots.push({ root, generation: target.generation, snapshotPath });
  }

  // head.json is a hint, but a lower one than the newest change file means upstream lost a write race.
  const newestChange = new Map<string, string>();
  for (const path of files.keys()) {
    if (classifyPath(path) !== "change") continue;
    const folder = parentOf(path);
    const hlc = hlcOf(nameOf(path));
    if ((newestChange.get(folder) ?? "") < hlc) newestChange.set(folder, hlc);
  }
  for (const [path, file] of files) {
    if (classifyPath(path) !== "head") continue;
    const latest = jsonOf(file.body)?.latestHlc;
    const newest = newestChange.get(parentOf(path));
    if (newest !== undefined && (typeof latest !== "string" || latest < newest)) {
      plan.reasons.push(`${path} says latestHlc ${JSON.stringify(latest ?? null)}, lower than the newest change file (${newest}).`);
    }
  }

  const committedSnapshots = new Set<string>();
  for (const [path, file] of files) {
    if (classifyPath(path) !== "generation") continue;
    const committed = committedGenerations.get(parentOf(path));
    const n = generationOf(path) ?? 0;
    if (committed !== undefined && n <= committed) {
      const snap = snapshotOf(file.body);
      if (snap !== null) committedSnapshots.add(snap);
    }
  }

  for (const [path, file] of files) {
    const cls = classifyPath(path);
    if (isControlClass(cls)) {
      let state: "committed" | null = null;
      if (cls === "generation") {
        if (refusedRoots.has(parentOf(path))) continue;
        const committed = committedGenerations.get(parentOf(path));
        if (committed === undefined || (generationOf(path) ?? 0) > committed) {
          plan.skipped.push({ path, reason: "uncommitted generation (newer than the pointer, or no pointer in its folder)" });
          continue;
        }
        state = "committed";
      } else if (cls === "manifest" && !committedGenerations.has(parentOf(path))) {
        continue; // already refused above
      }
      plan.control.push({ path, cls: cls as ControlClass, body: file.body, sha256: await sha256Hex(file.body), modifiedAt: file.modifiedAt, state });
      continue;
    }
    if (cls === "snapshot") {
      if (!committedSnapshots.has(path)) {
        plan.skipped.push({ path, reason: "snapshot no committed generation names (an uncommitted leftover)" });
        continue;
      }
      plan.snapshots.push({ path, sha256: await sha256Hex(file.body), size: file.body.byteLength, etag: "", modifiedAt: file.modifiedAt });
    }
    plan.objects.push({ path, body: file.body, modifiedAt: file.modifiedAt });
  }

  const stored = await source.db.prepare(`SELECT * FROM stored_files WHERE prefix = ?1 ORDER BY path`).bind(mesh).all<LegacyStoredRow>();
  for (const row of stored.results) {
    let path: string;
    try {
      path = normalizeFilePath(String(row.path));
    } catch {
      plan.reasons.push(`The stored file ${JSON.stringify(row.path)} has an invalid path.`);
      continue;
    }
    const uploadedAt = timeOf(row.uploaded_at);
    const modifiedAt = timeOf(row.modified_time) ?? uploadedAt;
    if (uploadedAt === null || modifiedAt === null || typeof row.r2_key !== "string") {
      plan.reasons.push(`The stored file ${path} lacks its r2_key or readable upload/modified times.`);
      continue;
    }
    // Upstream kept the guard itself; meshbox keeps only its SHA-256 and compares digests, so the
    // guard is hashed here (copied raw, no device could ever present it again). A guard meshbox
    // could not accept from a device would unseal the file: the mesh is refused instead.
    const guard = typeof row.seal_guard === "string" && row.seal_guard !== "" ? row.seal_guard : null;
    if (guard !== null && !/^[0-9a-fA-F]{64}$/.test(guard)) {
      plan.reasons.push(`The stored file ${path} has a seal guard that is not 64 hex characters; moving it would unseal it.`);
      continue;
    }
    if ((await source.files.head(row.r2_key)) === null) {
      plan.reasons.push(`The stored file ${path} has no body at ${row.r2_key} in the legacy bucket.`);
      continue;
    }
    const seal = guard === null ? null : await sha256Hex(encoder.encode(guard.toLowerCase())); // as a device's header is read
    const plaintext = typeof row.plaintext_size === "number" ? row.plaintext_size : null;
    plan.stored.push({
      path,
      r2Key: row.r2_key,
      size: typeof row.size === "number" ? row.size : 0,
      meta: {
        etag: "",
        contentType: typeof row.content_type === "string" && row.content_type !== "" ? row.content_type : "application/octet-stream",
        uploadedBy: typeof row.uploaded_by_device_id === "string" ? row.uploaded_by_device_id : "",
        uploadedAt,
        modifiedAt,
        lastAccessedAt: timeOf(row.last_accessed_at),
        useCount: typeof row.use_count === "number" ? row.use_count : 0,
        plaintextSize: plaintext,
        taint: typeof row.taint === "string" ? row.taint : null,
        sealHash: seal,
      },
    });
  }
  return plan;
}
