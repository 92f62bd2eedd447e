// Limits on the hub's push sockets: caps per mesh and per session (checked at upgrade),
// sessions revoked while an upgrade was in flight, and what a socket may send. A client only
// ever sends "ping", which the runtime answers without waking the hub; anything else wakes it,
// so a socket that sends big frames (1009) or many messages (1008) is closed at once, with no
// storage touched and no other work started.

export interface SocketLimits {
  maxPerMesh: number;
  maxPerSession: number;
  maxMessageBytes: number;
  maxMessagesPerMinute: number;
  /** How long a revoked session is remembered (its longest possible remaining life). */
  revokedMemoryMs: number;
}

export interface Refusal {
  status: 401 | 429;
  error: "unauthorized" | "rate_limited";
  message: string;
}

const WINDOW_MS = 60_000;

export class SocketGuard {
  readonly #sql: SqlStorage;
  readonly #limits: SocketLimits;
  /** Per-socket message counters; lost on hibernation, which only forgives a quiet socket. */
  readonly #counters = new WeakMap<WebSocket, { start: number; count: number }>();

  constructor(sql: SqlStorage, limits: SocketLimits) {
    this.#sql = sql;
    this.#limits = limits;
  }

  /** Why an upgrade must be refused, or null. `open` counts open sockets (optionally by tag). */
  refusal(sessionId: string | null, open: (sessionId?: string) => number, now: number): Refusal | null {
    if (sessionId !== null && this.#isRevoked(sessionId, now)) {
      return { status: 401, error: "unauthorized", message: "The session has been revoked." };
    }
    const { maxPerMesh, maxPerSession } = this.#limits;
    if (maxPerMesh > 0 && open() >= maxPerMesh) {
      return {
        status: 429,
        error: "rate_limited",
        message: `This mesh already has ${maxPerMesh} open push sockets (PUSH_MAX_SOCKETS_PER_MESH); retry later.`,
      };
    }
    if (sessionId !== null && maxPerSession > 0 && open(sessionId) >= maxPerSession) {
      return {
        status: 429,
        error: "rate_limited",
        message: `This session already has ${maxPerSession} open push sockets on this mesh (PUSH_MAX_SOCKETS_PER_SESSION); close one first.`,
      };
    }
    return null;
  }

  rememberRevoked(sessionIds: readonly string[], now: number): void {
    this.#sql.exec(`DELETE FROM revoked_sessions WHERE until < ?`, now);
    const until = now + this.#limits.revokedMemoryMs;
    for (const id of new Set(sessionIds)) {
      this.#sql.exec(
        `INSERT INTO revoked_sessions (jti, until) VALUES (?, ?) ON CONFLICT (jti) DO UPDATE SET until = excluded.until`,
        id,
        until,
      );
    }
  }

  #isRevoked(sessionId: string, now: number): boolean {
    return this.#sql.exec(`SELECT 1 FROM revoked_sessions WHERE jti = ? AND until >= ?`, sessionId, now).toArray().length > 0;
  }

  /** The close (code, reason) a message earns, or null when it is within bounds. */
  judgeMessage(ws: WebSocket, message: string | ArrayBuffer, now: number): { code: 1008 | 1009; reason: string } | null {
    const { maxMessageBytes, maxMessagesPerMinute } = this.#limits;
    const size = typeof message === "string" ? byteLengthAtLeast(message, maxMessageBytes) : message.byteLength;
    if (maxMessageBytes > 0 && size > maxMessageBytes) {
      return { code: 1009, reason: `Message too big (limit ${maxMessageBytes} bytes); clients only send "ping".` };
    }
    if (maxMessagesPerMinute <= 0) return null;
    let counter = this.#counters.get(ws);
    if (counter === undefined || now - counter.start >= WINDOW_MS) {
      counter = { start: now, count: 0 };
      this.#counters.set(ws, counter);
    }
    counter.count++;
    if (counter.count > maxMessagesPerMinute) {
      return { code: 1008, reason: `Too many messages (limit ${maxMessagesPerMinute} a minute).` };
    }
    return null;
  }
}

/** UTF-8 length, computed only when it could exceed `bound` (each UTF-16 unit is at most 3 bytes). */
function byteLengthAtLeast(text: string, bound: number): number {
  if (text.length * 3 <= bound) return text.length;
  return new TextEncoder().encode(text).byteLength;
}
