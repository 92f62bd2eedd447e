// Push: hibernatable WebSockets and coalesced invalidation frames (PROTOCOL.md section 6).
// Pending invalidations live in SQLite, so an evicted hub's alarm still sends them; the window's
// state is kept in memory and rebuilt from SQLite when the hub starts (the hub is its only
// writer), so a write costs one INSERT and no reads. The hub's one alarm serves both the
// coalescing window and socket expiry.
//
// A write while no socket is open queues nothing: there is nobody to tell. Instead the hub keeps
// its last pushed write, and a socket accepted within CATCH_UP_MS of it is sent a frame for it at
// once. That also covers the real client's own gap: it pulls, flushes and only then opens its
// socket (CLIENT.md "Connect"), so a write landing in between would otherwise reach it only at
// its next poll, five minutes later while the socket is up.
import type { InvalidationEvent, InvalidationFrame, SocketAttachment } from "./hub-api";
import { readCounter, readMeta, nextCounter, writeMeta } from "./hub-schema";

export interface PushTiming {
  quietMs: number;
  maxDelayMs: number;
}

/** A frame listing more paths than this omits `paths` (clients only need "pull now"). */
const MAX_LISTED_PATHS = 64;
const OPEN = 1;
/** A socket accepted this soon after the mesh's last pushed write gets a frame for it (longer than a client's 15 s connect). */
export const CATCH_UP_MS = 30_000;

/** The last pushed write, kept for the sockets that open after it. */
interface LastEvent extends InvalidationEvent {
  at: number;
}

/** The coalescing window, as it stands; rebuilt from SQLite on the hub's first use. */
interface WindowState {
  firstPendingAt: number | null;
  lastEventAt: number | null;
  lastSentAt: number | null;
  nextExpiry: number | null;
  lastEvent: LastEvent | null;
}

interface PendingRow extends Record<string, SqlStorageValue> {
  id: number;
  op: string;
  path: string;
  path_type: string;
  at: number;
}

function numberOrNull(value: SqlStorageValue): number | null {
  return typeof value === "number" ? value : null;
}

function lastEventOf(value: SqlStorageValue): LastEvent | null {
  if (typeof value !== "string") return null;
  try {
    const parsed = JSON.parse(value) as Partial<LastEvent>;
    if (typeof parsed.path !== "string" || typeof parsed.at !== "number") return null;
    return { op: parsed.op === "delete" ? "delete" : "write", path: parsed.path, pathType: parsed.pathType ?? "other", at: parsed.at };
  } catch {
    return null;
  }
}

export class PushHub {
  readonly #ctx: DurableObjectState;
  readonly #sql: SqlStorage;
  readonly #timing: PushTiming;
  #window: WindowState | null = null;

  constructor(ctx: DurableObjectState, timing: PushTiming) {
    this.#ctx = ctx;
    this.#sql = ctx.storage.sql;
    this.#timing = timing;
  }

  /** The window state: read from SQLite once per hub start (the schema exists by first use). */
  #state(): WindowState {
    if (this.#window === null) {
      const span = this.#sql.exec<{ first: number | null; last: number | null }>(`SELECT min(at) AS first, max(at) AS last FROM pending`).one();
      this.#window = {
        firstPendingAt: span.first,
        lastEventAt: span.last,
        lastSentAt: numberOrNull(readMeta(this.#sql, "push.last_sent_at")),
        nextExpiry: numberOrNull(readMeta(this.#sql, "push.next_expiry")),
        lastEvent: lastEventOf(readMeta(this.#sql, "push.last_event")),
      };
    }
    return this.#window;
  }

  /** Forgets the window state (after the hub's storage was wiped). */
  reset(): void {
    this.#window = null;
  }

  /**
   * Accepts an upgrade with the Hibernation API; the attachment outlives eviction. A socket that
   * opens within CATCH_UP_MS of the last pushed write is sent a frame for it (see the top).
   */
  accept(attachment: SocketAttachment): Response {
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    const tags = attachment.sessionId !== null ? [sessionTag(attachment.sessionId)] : [];
    this.#ctx.acceptWebSocket(server, tags);
    server.serializeAttachment(attachment);
    const state = this.#state();
    if (attachment.expiresAt !== null && (state.nextExpiry === null || attachment.expiresAt < state.nextExpiry)) {
      state.nextExpiry = attachment.expiresAt;
      writeMeta(this.#sql, "push.next_expiry", attachment.expiresAt);
    }
    const last = state.lastEvent;
    // A pending frame that already covers the last write reaches this socket within the window.
    const pendingCovers = state.firstPendingAt !== null && state.lastEventAt !== null && last !== null && state.lastEventAt >= last.at;
    if (last !== null && !pendingCovers && attachment.connectedAt - last.at < CATCH_UP_MS) {
      const frame: InvalidationFrame = { type: "invalidation", op: last.op, path: last.path, pathType: last.pathType, ts: last.at, seq: nextCounter(this.#sql, "seq") };
      try {
        server.send(JSON.stringify(frame));
      } catch {
        // The client went away already.
      }
    }
    return new Response(null, { status: 101, webSocket: client });
  }

  /** Open sockets on this mesh, or of one session. */
  openCount(sessionId?: string): number {
    return this.#openSockets(sessionId === undefined ? undefined : sessionTag(sessionId)).length;
  }

  #openSockets(tag?: string): WebSocket[] {
    return this.#ctx.getWebSockets(tag).filter((ws) => ws.readyState === OPEN);
  }

  connected(): number {
    return this.#openSockets().length;
  }

  seq(): number {
    return readCounter(this.#sql, "seq");
  }

  pendingCount(): number {
    return this.#sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM pending`).one().n;
  }

  /**
   * A durable write (acknowledged at `at`) to tell the mesh's sockets about: queued for the next
   * frame when any socket is open, and kept as the last pushed write either way (for the sockets
   * that open next).
   */
  record(event: InvalidationEvent, at: number): void {
    const state = this.#state();
    if (state.lastEvent === null || at >= state.lastEvent.at) {
      state.lastEvent = { op: event.op, path: event.path, pathType: event.pathType, at };
      writeMeta(this.#sql, "push.last_event", JSON.stringify(state.lastEvent));
    }
    if (this.#openSockets().length > 0) this.enqueue(event, at);
  }

  /**
   * Queues an invalidation for the next frame. The window counts from when the write was
   * acknowledged, not from when the hub heard of it: a write the Worker held a while is not
   * pushed later for it, and held writes may arrive out of order.
   */
  enqueue(event: InvalidationEvent, at: number): void {
    this.#sql.exec(
      `INSERT INTO pending (op, path, path_type, at) VALUES (?, ?, ?, ?)`,
      event.op,
      event.path,
      event.pathType,
      at,
    );
    const state = this.#state();
    state.firstPendingAt = state.firstPendingAt === null ? at : Math.min(state.firstPendingAt, at);
    state.lastEventAt = state.lastEventAt === null ? at : Math.max(state.lastEventAt, at);
  }

  /**
   * When the pending frame is due: after a quiet window since the last event, never later than
   * the max delay after the first one, and never sooner than a window after the previous frame.
   */
  dueAt(): number | null {
    const { firstPendingAt: first, lastEventAt, lastSentAt } = this.#state();
    if (first === null) return null;
    const last = lastEventAt ?? first;
    let due = Math.min(last + this.#timing.quietMs, first + this.#timing.maxDelayMs);
    if (lastSentAt !== null) due = Math.max(due, lastSentAt + this.#timing.quietMs);
    return due;
  }

  /** Sends one frame for everything pending. Sends are held by the output gate until the
   * deletion of the pending rows is durable, so a crash can repeat a frame but never lose one. */
  flush(now: number): InvalidationFrame | null {
    const state = this.#state();
    const rows = this.#sql.exec<PendingRow>(`SELECT * FROM pending ORDER BY id`).toArray();
    const last = rows[rows.length - 1];
    if (!last) {
      state.firstPendingAt = null;
      state.lastEventAt = null;
      return null;
    }
    const paths = [...new Set(rows.map((r) => r.path))];
    const frame: InvalidationFrame = {
      type: "invalidation",
      op: last.op === "delete" ? "delete" : "write",
      path: last.path,
      pathType: last.path_type as InvalidationFrame["pathType"],
      ts: last.at,
      seq: nextCounter(this.#sql, "seq"),
    };
    if (paths.length > 1 && paths.length <= MAX_LISTED_PATHS) frame.paths = paths;
    this.#sql.exec(`DELETE FROM pending WHERE id <= ?`, last.id);
    writeMeta(this.#sql, "push.last_sent_at", now);
    state.firstPendingAt = null;
    state.lastEventAt = null;
    state.lastSentAt = now;
    const text = JSON.stringify(frame);
    for (const ws of this.#openSockets()) {
      try {
        ws.send(text);
      } catch {
        // A socket that is going away misses this frame; its client re-pulls on reconnect.
      }
    }
    return frame;
  }

  /** Closes sockets whose session expired (4401); returns the next expiry still ahead, or null. */
  closeExpired(now: number): number | null {
    let next: number | null = null;
    for (const ws of this.#openSockets()) {
      const expiresAt = attachmentOf(ws)?.expiresAt ?? null;
      if (expiresAt === null) continue;
      if (expiresAt <= now) closeQuietly(ws, 4401, "Session expired.");
      else next = next === null ? expiresAt : Math.min(next, expiresAt);
    }
    const state = this.#state();
    if (state.nextExpiry !== next) {
      state.nextExpiry = next;
      writeMeta(this.#sql, "push.next_expiry", next);
    }
    return next;
  }

  /** The earliest socket expiry as of the last scan or accept (may be a closed socket's: harmless). */
  knownNextExpiry(): number | null {
    return this.#state().nextExpiry;
  }

  closeSessions(sessionIds: readonly string[], code: number, reason: string): number {
    let closed = 0;
    for (const id of new Set(sessionIds)) {
      for (const ws of this.#openSockets(sessionTag(id))) {
        closeQuietly(ws, code, reason);
        closed++;
      }
    }
    return closed;
  }

  closeAll(code: number, reason: string): number {
    const sockets = this.#openSockets();
    for (const ws of sockets) closeQuietly(ws, code, reason);
    return sockets.length;
  }
}

function sessionTag(sessionId: string): string {
  // Tags are capped at 256 characters; a jti is far shorter, but never let one break accept().
  return `session:${sessionId}`.slice(0, 256);
}

function attachmentOf(ws: WebSocket): SocketAttachment | null {
  try {
    return (ws.deserializeAttachment() as SocketAttachment | null) ?? null;
  } catch {
    return null;
  }
}

export function closeQuietly(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason);
  } catch {
    // Already closing.
  }
}
