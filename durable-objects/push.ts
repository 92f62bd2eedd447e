// Push: hibernatable WebSockets and coalesced invalidation frames (PROTOCOL.md section 6).
// Pending invalidations and the window state live in SQLite, so an evicted hub's alarm still
// sends them. The hub's one alarm serves both the coalescing window and socket expiry.
import type { InvalidationEvent, InvalidationFrame, SocketAttachment } from "./hub-api";
import { readCounter, readMeta, nextCounter, writeMeta } from "./hub-schema";

export interface PushTiming {
  quietMs: number;
  maxDelayMs: number;
}

/** A frame listing more paths than this omits `paths` (clients only need "pull now"). */
const MAX_LISTED_PATHS = 64;
const OPEN = 1;

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

export class PushHub {
  readonly #ctx: DurableObjectState;
  readonly #sql: SqlStorage;
  readonly #timing: PushTiming;

  constructor(ctx: DurableObjectState, timing: PushTiming) {
    this.#ctx = ctx;
    this.#sql = ctx.storage.sql;
    this.#timing = timing;
  }

  /** Accepts an upgrade with the Hibernation API; the attachment outlives eviction. */
  accept(attachment: SocketAttachment): Response {
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    const tags = attachment.sessionId !== null ? [sessionTag(attachment.sessionId)] : [];
    this.#ctx.acceptWebSocket(server, tags);
    server.serializeAttachment(attachment);
    if (attachment.expiresAt !== null) {
      const known = this.knownNextExpiry();
      if (known === null || attachment.expiresAt < known) writeMeta(this.#sql, "push.next_expiry", attachment.expiresAt);
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

  enqueue(event: InvalidationEvent, now: number): void {
    this.#sql.exec(
      `INSERT INTO pending (op, path, path_type, at) VALUES (?, ?, ?, ?)`,
      event.op,
      event.path,
      event.pathType,
      now,
    );
    if (readMeta(this.#sql, "push.first_pending_at") === null) writeMeta(this.#sql, "push.first_pending_at", now);
    writeMeta(this.#sql, "push.last_event_at", now);
  }

  /**
   * When the pending frame is due: after a quiet window since the last event, never later than
   * the max delay after the first one, and never sooner than a window after the previous frame.
   */
  dueAt(): number | null {
    const first = numberOrNull(readMeta(this.#sql, "push.first_pending_at"));
    if (first === null) return null;
    const last = numberOrNull(readMeta(this.#sql, "push.last_event_at")) ?? first;
    const lastSent = numberOrNull(readMeta(this.#sql, "push.last_sent_at"));
    let due = Math.min(last + this.#timing.quietMs, first + this.#timing.maxDelayMs);
    if (lastSent !== null) due = Math.max(due, lastSent + this.#timing.quietMs);
    return due;
  }

  /** Sends one frame for everything pending. Sends are held by the output gate until the
   * deletion of the pending rows is durable, so a crash can repeat a frame but never lose one. */
  flush(now: number): InvalidationFrame | null {
    const rows = this.#sql.exec<PendingRow>(`SELECT * FROM pending ORDER BY id`).toArray();
    const last = rows[rows.length - 1];
    if (!last) {
      writeMeta(this.#sql, "push.first_pending_at", null);
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
    writeMeta(this.#sql, "push.first_pending_at", null);
    writeMeta(this.#sql, "push.last_sent_at", now);
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
    writeMeta(this.#sql, "push.next_expiry", next);
    return next;
  }

  /** The earliest socket expiry as of the last scan or accept (may be a closed socket's: harmless). */
  knownNextExpiry(): number | null {
    return numberOrNull(readMeta(this.#sql, "push.next_expiry"));
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
