// MeshHub: one Durable Object per mesh, the single writer of the mesh's control state (manifest
// pointer CAS, generations and snapshots with leases, head.json) and its WebSocket hub.
// Typed RPC methods serve the Worker; `fetch` only accepts WebSocket upgrades the Worker has
// already authorized. Refusals cross RPC as values (HubRefusal), never as thrown errors.
import { DurableObject } from "cloudflare:workers";
// The hub reads only configuration vars; typing its env as the Worker's Env would make a cycle
// (worker/env.ts names this class for its namespace binding).
import { readConfig, type ConfigVars } from "../worker/lib/config";
import {
  HUB_ATTACHMENT_HEADER,
  HUB_MESH_HEADER,
  type ArchivedControl,
  type ArchivedRoot,
  type ArchivedSnapshot,
  type ControlBody,
  type ControlClass,
  type ControlDeletion,
  type ControlRecord,
  type ControlWrite,
  type HubArchive,
  type HubDeletePrecondition,
  type HubHealth,
  type HubPrecondition,
  type HubResult,
  type HubStats,
  type HubWipe,
  type HourlyCount,
  type InvalidationEvent,
  type NotifyAnswer,
  type SnapshotComparison,
  type SnapshotOpening,
  type SnapshotRecord,
  type SocketAttachment,
} from "./hub-api";
import { createSchema, readMeta, writeMeta } from "./hub-schema";
import { ControlStore } from "./control-store";
import { SnapshotLedger } from "./snapshot-ledger";
import { PushHub, closeQuietly } from "./push";
import { SocketGuard } from "./socket-guard";
import { ActivityLedger } from "./activity";
import { hubActivityStatements } from "../worker/objects/usage";
import { moveMeshIndex, type MoveResult } from "../worker/operations/shard-move";
import type { ShardEnv } from "../worker/shards/shard-bindings";
import { indexDbFor } from "../worker/shards/mesh-index-db";

/** Meta key of the running import's claim (see claimImport). */
const IMPORT_CLAIM = "import_claim";

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The hub's bindings: configuration vars, and the index databases (its counters' copy, index moves). */
export type HubEnv = ConfigVars & ShardEnv;

export class MeshHub extends DurableObject<HubEnv> {
  readonly #snapshots: SnapshotLedger;
  readonly #activity: ActivityLedger;
  readonly #control: ControlStore;
  readonly #push: PushHub;
  readonly #guard: SocketGuard;
  #mesh: string | null = null;
  /** The alarm time this hub last set (null: none), unknown (undefined) until it sets or clears one. */
  #alarmAt: number | null | undefined = undefined;
  /** Set while this hub moves its mesh's index (one move per mesh at a time). */
  #movingIndex = false;

  constructor(ctx: DurableObjectState, env: HubEnv) {
    super(ctx, env);
    const config = readConfig(env);
    this.#snapshots = new SnapshotLedger(ctx.storage.sql);
    this.#activity = new ActivityLedger(ctx.storage.sql);
    this.#control = new ControlStore(ctx.storage.sql, this.#snapshots);
    this.#push = new PushHub(ctx, { quietMs: config.pushQuietMs, maxDelayMs: config.pushMaxDelayMs });
    this.#guard = new SocketGuard(ctx.storage.sql, {
      maxPerMesh: config.pushMaxSocketsPerMesh,
      maxPerSession: config.pushMaxSocketsPerSession,
      maxMessageBytes: config.pushMaxMessageBytes,
      maxMessagesPerMinute: config.pushMaxMessagesPerMinute,
      revokedMemoryMs: (config.sessionTtlSeconds + config.clockToleranceSeconds) * 1000 + 60_000,
    });
    // Keep-alive pings are answered by the runtime without waking a hibernated hub.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
    void ctx.blockConcurrencyWhile(async () => {
      createSchema(ctx.storage.sql);
      const mesh = readMeta(ctx.storage.sql, "mesh");
      this.#mesh = typeof mesh === "string" ? mesh : null;
    });
  }

  /**
   * The hub learns its mesh id from the Worker's writes (a DO id does not carry its name), for
   * operators inspecting a hub's storage; nothing on the request path depends on it.
   */
  #remember(mesh: string): void {
    if (this.#mesh === mesh) return;
    this.#mesh = mesh;
    writeMeta(this.ctx.storage.sql, "mesh", mesh);
  }

  // ---- Control objects ----

  async putControl(
    mesh: string,
    path: string,
    cls: ControlClass,
    body: Uint8Array,
    pre: HubPrecondition | undefined,
    leaseMs: number,
  ): Promise<HubResult<ControlWrite>> {
    // Hash first: after this await the whole rule check and write is synchronous, hence atomic.
    const sha256 = await sha256Hex(body);
    this.#remember(mesh);
    const now = Date.now();
    const result = this.ctx.storage.transactionSync(() => this.#control.write({ path, cls, body, sha256, pre, leaseMs, now }));
    if (!result.ok || !result.changed) return result;
    // The write is durable here, so the hub records its own invalidation (queued when a socket is
    // open; device records are never pushed) and counts it: no second RPC from the Worker for either.
    if (cls !== "device") this.#push.record({ op: "write", path, pathType: cls }, now);
    this.#activity.count(now, body.byteLength);
    await this.#schedule(false);
    return result;
  }

  readControl(_mesh: string, path: string): ControlBody | null {
    return this.#control.read(path);
  }

  deleteControl(mesh: string, paths: string[], pre?: HubDeletePrecondition): HubResult<ControlDeletion> {
    this.#remember(mesh);
    return this.ctx.storage.transactionSync(() => this.#control.delete(paths, pre, Date.now()));
  }

  listControl(_mesh: string, prefix: string): ControlRecord[] {
    return this.#control.list(prefix);
  }

  // ---- Snapshots (bodies in R2, state here) ----

  openSnapshot(mesh: string, path: string, pre: HubPrecondition | undefined, leaseMs: number): HubResult<SnapshotOpening> {
    this.#remember(mesh);
    return this.#snapshots.open(path, pre, leaseMs, Date.now());
  }

  compareSnapshot(_mesh: string, path: string, sha256: string): HubResult<SnapshotComparison> {
    return this.#snapshots.compare(path, sha256, Date.now());
  }

  finishSnapshot(
    mesh: string,
    path: string,
    token: string,
    sha256: string,
    size: number,
    etag: string,
  ): HubResult<{ record: SnapshotRecord }> {
    this.#remember(mesh);
    return this.#snapshots.finish(path, token, sha256, size, etag, Date.now());
  }

  /** A multipart owner's last word before complete(): still the owner, and held for `windowMs`. */
  sealSnapshot(mesh: string, path: string, token: string, windowMs: number): HubResult<Record<never, never>> {
    this.#remember(mesh);
    return this.#snapshots.seal(path, token, windowMs, Date.now());
  }

  abortSnapshot(mesh: string, path: string, token: string): void {
    this.#remember(mesh);
    this.#snapshots.abort(path, token);
  }

  /** 409 if any is live or uploading; else all are claimed (never committable) in one step. */
  claimSnapshotsForDeletion(mesh: string, paths: string[]): HubResult<Record<never, never>> {
    this.#remember(mesh);
    return this.ctx.storage.transactionSync(() => this.#snapshots.claimForDeletion(paths, Date.now()));
  }

  forgetSnapshots(mesh: string, paths: string[]): number {
    this.#remember(mesh);
    return this.ctx.storage.transactionSync(() => this.#snapshots.forget(paths));
  }

  snapshotState(_mesh: string, path: string): SnapshotRecord | null {
    return this.#snapshots.get(path);
  }

  // ---- Push ----

  /**
   * Records durable writes' invalidations (one, or a batch the Worker held); the alarm sends the
   * coalesced frame. The answer says whether any socket is open; either way the Worker may hold
   * the mesh's next writes and send them together, for a quiet window while a socket is open
   * (worker/objects/push.ts). Each event's window counts from its `at`, when it was acknowledged.
   */
  async notify(mesh: string, events: InvalidationEvent | InvalidationEvent[]): Promise<NotifyAnswer> {
    this.#remember(mesh);
    const now = Date.now();
    for (const event of Array.isArray(events) ? events : [events]) {
      const at = Math.min(event.at ?? now, now);
      this.#push.record({ op: event.op, path: event.path, pathType: event.pathType }, at);
      this.#activity.count(at, event.bytes ?? 0);
    }
    await this.#schedule(false);
    return { listening: this.#push.connected() > 0 };
  }

  // ---- Activity (the dashboard's hourly counters) ----

  /** The hours from `fromHour` on as counted here, newer than D1's copy of them. */
  activity(_mesh: string, fromHour: number): HourlyCount[] {
    return this.#activity.since(fromHour);
  }

  /** Copies the counters to D1 when due; a failure is logged and retried a minute later. */
  async #flushActivity(now: number): Promise<void> {
    const due = this.#activity.dueAt();
    if (due === null || due > now) return;
    const mesh = this.#mesh;
    // A hub that does not know its mesh yet (a write racing a wipe) tries again a minute later
    // rather than waking at once, forever.
    if (mesh === null) return this.#activity.postpone(now);
    const db = indexDbFor(this.env, mesh);
    try {
      await this.#activity.flush(async (rows, lastWriteAt) => {
        const { controlBytes } = this.#control.stats();
        await db.batch(hubActivityStatements(db, mesh, { rows, lastWriteAt, controlBytes }));
      }, now);
    } catch (err) {
      console.error(JSON.stringify({ level: "warn", msg: "activity copy to D1 failed", mesh, error: String(err) }));
    }
  }

  override async fetch(request: Request): Promise<Response> {
    if ((request.headers.get("Upgrade") ?? "").toLowerCase() !== "websocket") {
      return Response.json({ error: "upgrade_required", message: "MeshHub only accepts WebSocket upgrades." }, { status: 426 });
    }
    const mesh = request.headers.get(HUB_MESH_HEADER);
    if (mesh) this.#remember(mesh);
    const attachment = parseAttachment(request.headers.get(HUB_ATTACHMENT_HEADER));
    const refusal = this.#guard.refusal(attachment.sessionId, (id) => this.#push.openCount(id), Date.now());
    if (refusal !== null) {
      const headers: Record<string, string> = refusal.status === 401 ? { "WWW-Authenticate": "Bearer" } : { "Retry-After": "60" };
      return Response.json({ error: refusal.error, message: refusal.message }, { status: refusal.status, headers });
    }
    const response = this.#push.accept(attachment);
    if (attachment.expiresAt !== null) await this.#schedule(false);
    return response;
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    // Clients only listen; "ping" is auto-answered without waking the hub. Anything else is
    // ignored, unless it is too big or too frequent: then the socket is closed, nothing else.
    const verdict = this.#guard.judgeMessage(ws, message, Date.now());
    if (verdict !== null) closeQuietly(ws, verdict.code, verdict.reason);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    // Codes 1005/1006 are reserved and may not be sent back.
    closeQuietly(ws, code === 1005 || code === 1006 ? 1000 : code, reason);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    closeQuietly(ws, 1011, "WebSocket error.");
  }

  override async alarm(): Promise<void> {
    // The alarm that woke the hub is spent.
    this.#alarmAt = null;
    const now = Date.now();
    const due = this.#push.dueAt();
    if (due !== null && due <= now) this.#push.flush(now);
    await this.#flushActivity(now);
    await this.#schedule(true);
  }

  /**
   * One alarm for every job: the pending frame's due time, the next socket expiry and the copy of
   * the counters. Only the alarm scans the sockets (closing expired ones); writes reuse the expiry
   * it last computed.
   */
  async #schedule(scanSockets: boolean): Promise<void> {
    const now = Date.now();
    const nextExpiry = scanSockets ? this.#push.closeExpired(now) : this.#push.knownNextExpiry();
    const due = this.#push.dueAt();
    const candidates = [due, nextExpiry, this.#activity.dueAt()].filter((t): t is number => t !== null);
    if (candidates.length === 0) {
      if (this.#alarmAt !== null) await this.ctx.storage.deleteAlarm();
      this.#alarmAt = null;
      return;
    }
    const at = Math.max(Math.min(...candidates), now);
    // An alarm already set no later than `at` wakes the hub in time, and alarm() sets the next one
    // from the state then: a burst of writes (each moving the quiet window on) sets no alarm each.
    if (!scanSockets && this.#alarmAt !== undefined && this.#alarmAt !== null && this.#alarmAt <= at) return;
    await this.ctx.storage.setAlarm(at);
    this.#alarmAt = at;
  }

  /** Closes the sockets of revoked sessions (4403) or expired ones (4401). */
  closeSessions(sessionIds: string[], code: 4401 | 4403): number {
    if (code === 4403) this.#guard.rememberRevoked(sessionIds, Date.now());
    return this.#push.closeSessions(sessionIds, code, code === 4401 ? "Session expired." : "Session revoked.");
  }

  // ---- Operations ----

  health(mesh: string): HubHealth {
    return {
      ok: true,
      mesh,
      connected: this.#push.connected(),
      pendingFrames: this.#push.pendingCount() > 0 ? 1 : 0,
      seq: this.#push.seq(),
    };
  }

  stats(): HubStats {
    return { connected: this.#push.connected(), seq: this.#push.seq(), ...this.#control.stats() };
  }

  /** The committed state in one atomic read, for an export (candidates and leases left out). */
  exportState(): HubArchive {
    return this.ctx.storage.transactionSync(() => ({ ...this.#control.exportCommitted(), ...this.#snapshots.exportCommitted() }));
  }

  /** True when the hub holds nothing an import could collide with. */
  isEmpty(): boolean {
    return this.#control.isEmpty() && this.#snapshots.isEmpty();
  }

  /**
   * Claims an empty hub for one import, so two imports into the same mesh cannot interleave (the
   * loser is told 409 before it writes anything). A claim lapses after `leaseMs`; a wipe drops it.
   */
  claimImport(mesh: string, token: string, leaseMs: number): HubResult<Record<never, never>> {
    this.#remember(mesh);
    return this.ctx.storage.transactionSync(() => {
      if (!this.isEmpty()) return { ok: false as const, code: "conflict" as const, message: "The mesh's hub is not empty." };
      const held = this.#importClaim();
      if (held !== null && held.token !== token && Date.now() < held.until) {
        return { ok: false as const, code: "conflict" as const, message: "Another import into this mesh is running; wait for it, or import with --replace." };
      }
      writeMeta(this.ctx.storage.sql, IMPORT_CLAIM, JSON.stringify({ token, until: Date.now() + leaseMs }));
      return { ok: true as const };
    });
  }

  #importClaim(): { token: string; until: number } | null {
    const raw = readMeta(this.ctx.storage.sql, IMPORT_CLAIM);
    if (typeof raw !== "string") return null;
    try {
      const value = JSON.parse(raw) as { token?: unknown; until?: unknown };
      return typeof value.token === "string" && typeof value.until === "number" ? { token: value.token, until: value.until } : null;
    } catch {
      return null;
    }
  }

  /**
   * Installs an archive's committed state into this hub, which must be empty (409 otherwise): the
   * same bytes, the same committed generations and snapshots, so the write rules (immutable
   * generations, pointer CAS, write-once snapshots) hold exactly as before. All or nothing.
   */
  async installState(
    mesh: string,
    token: string,
    control: ArchivedControl[],
    roots: ArchivedRoot[],
    snapshots: ArchivedSnapshot[],
  ): Promise<HubResult<{ records: ControlRecord[] }>> {
    for (const item of control) {
      if ((await sha256Hex(item.body)) !== item.sha256) {
        return { ok: false, code: "bad_request", message: `The bytes of ${item.path} do not match their SHA-256.` };
      }
    }
    this.#remember(mesh);
    return this.ctx.storage.transactionSync(() => {
      if (!this.isEmpty()) return { ok: false as const, code: "conflict" as const, message: "The mesh's hub is not empty." };
      if (this.#importClaim()?.token !== token) {
        return { ok: false as const, code: "conflict" as const, message: "This import no longer holds the mesh (another import or a wipe took it over)." };
      }
      // install() validates everything before its first insert, so a refusal leaves nothing behind.
      const installed = this.#control.install(control, roots, Date.now());
      if (installed.ok) {
        this.#snapshots.install(snapshots);
        this.ctx.storage.sql.exec(`DELETE FROM meta WHERE key = ?`, IMPORT_CLAIM);
      }
      return installed;
    });
  }

  /**
   * Moves the mesh's index rows to shard `to` (worker/operations/shard-move.ts). Running it here
   * makes the hub the one place a mesh's move runs: a second request while one runs is refused.
   */
  async moveIndex(mesh: string, to: number): Promise<MoveResult> {
    if (this.#movingIndex) return { ok: false, status: 409, message: `A move of ${mesh} is already running.` };
    this.#movingIndex = true;
    try {
      return await moveMeshIndex(this.env, mesh, to);
    } finally {
      this.#movingIndex = false;
    }
  }

  /** Deletes every bit of hub state and closes the mesh's sockets (4403: the mesh is gone). */
  async wipe(): Promise<HubWipe> {
    const { controlObjects } = this.#control.stats();
    const snapshots = this.#snapshots.count();
    const closedSockets = this.#push.closeAll(4403, "The mesh was wiped.");
    await this.ctx.storage.deleteAlarm();
    this.#alarmAt = null;
    await this.ctx.storage.deleteAll();
    createSchema(this.ctx.storage.sql);
    this.#push.reset();
    this.#activity.reset();
    this.#mesh = null;
    return { controlObjects, snapshots, closedSockets };
  }
}

function parseAttachment(raw: string | null): SocketAttachment {
  const now = Date.now();
  if (!raw) return { sessionId: null, expiresAt: null, connectedAt: now };
  try {
    const value = JSON.parse(raw) as Partial<SocketAttachment>;
    return {
      sessionId: typeof value.sessionId === "string" ? value.sessionId : null,
      expiresAt: typeof value.expiresAt === "number" ? value.expiresAt : null,
      connectedAt: now,
    };
  } catch {
    return { sessionId: null, expiresAt: null, connectedAt: now };
  }
}
