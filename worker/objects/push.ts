// Push invalidations: the Worker tells the mesh's hub once a write is durable; the hub coalesces
// and sends frames (PROTOCOL.md section 6). The WebSocket upgrade itself is forwarded to the hub
// with what the hub must remember about the caller (session id, expiry) in a header.
import type { Env } from "../env";
import type { Principal } from "../request-context";
import {
  HUB_ATTACHMENT_HEADER,
  HUB_MESH_HEADER,
  type HubHealth,
  type InvalidationEvent,
  type SocketAttachment,
} from "../../durable-objects/hub-api";
import { callHubIdempotent, meshHub } from "../hub-client";
import { readConfig } from "../lib/config";

/**
 * Tells the hub of durable writes. A failure here must not fail the write: the client's retry
 * would be a no-op repeat, which sends no frame, so one retry, then a log line. Returns whether
 * the hub has a socket open (true after a failure, so the next hold is the short one).
 */
export async function notifyInvalidation(env: Env, meshId: string, events: InvalidationEvent[]): Promise<boolean> {
  for (let attempt = 1; attempt <= 2; attempt++) {
    try {
      return (await meshHub(env, meshId).notify(meshId, events)).listening;
    } catch (err) {
      if (attempt === 2) {
        console.error(JSON.stringify({ level: "error", msg: "push notify failed", mesh: meshId, events: events.length, error: String(err) }));
      }
    }
  }
  return true;
}

// Writes to a mesh whose hub has no socket open (one device writing alone, the others offline)
// need no frame soon: nobody is listening. The hub says so in its answer, and this isolate then
// holds that mesh's next writes for PUSH_HOLD_MS (by default, and at most, the max delay less a
// quiet window) and sends them in one call, so a steady writer costs the hub one request a second
// instead of one per change file. A socket that opens meanwhile hears of them within the max delay, as if it
// had been open; control writes go to the hub anyway and are never held.
//
// While a socket is open the isolate holds for at most one quiet window (PUSH_QUIET_MS). The hub
// counts each write's window from when it was acknowledged (`at`), and the frame for it would
// wait that window anyway, so no frame goes out later for the hold: a lone write is sent at once
// (the hold starts after it) and a burst reaches the hub about once a window instead of once a
// write. Only plain data is shared between requests: the request that asked sends what the others left.

interface HeldWrites {
  until: number;
  events: InvalidationEvent[];
}

/** Meshes whose writes this isolate holds, and how many writes one batch takes (both bounded, issue 12). */
const MAX_HELD_MESHES = 10_000;
const MAX_HELD_EVENTS = 500;
/** A request sends at most this many batches (at most about 9 s at the default max delay, inside waitUntil's 30 s). */
const MAX_BATCHES = 10;

const held = new Map<string, HeldWrites>();

/**
 * After a durable write or delete of an R2 object: tells the hub in the background, or leaves
 * the event to the batch this isolate is holding for the mesh. Never fails the request.
 */
export function pushInvalidation(env: Env, ctx: ExecutionContext, meshId: string, event: InvalidationEvent): void {
  const now = Date.now();
  const batch = held.get(meshId);
  if (batch !== undefined && now < batch.until && batch.events.length < MAX_HELD_EVENTS) {
    batch.events.push({ ...event, at: now });
    return;
  }
  const config = readConfig(env);
  ctx.waitUntil(sendAndHold(env, meshId, [{ ...event, at: now }], config.pushHoldMs, config.pushListeningHoldMs));
}

async function sendAndHold(env: Env, meshId: string, first: InvalidationEvent[], idleHoldMs: number, listeningHoldMs: number): Promise<void> {
  let events = first;
  for (let batch = 1; events.length > 0; batch++) {
    const listening = await notifyInvalidation(env, meshId, events);
    const holdMs = listening ? listeningHoldMs : idleHoldMs;
    if (holdMs <= 0 || batch >= MAX_BATCHES) return;
    events = await holdFor(meshId, holdMs);
  }
}

/** Holds the mesh's next writes for `ms`; returns what arrived (a newer holder may take over). */
async function holdFor(meshId: string, ms: number): Promise<InvalidationEvent[]> {
  if (!held.has(meshId) && held.size >= MAX_HELD_MESHES) return [];
  const mine: HeldWrites = { until: Date.now() + ms, events: [] };
  held.set(meshId, mine);
  await scheduler.wait(ms);
  if (held.get(meshId) === mine) held.delete(meshId);
  return mine.events;
}

/** Hands an authorized upgrade to the hub, which answers 101 with a hibernatable socket. */
export async function openPushSocket(env: Env, meshId: string, request: Request, principal: Principal | undefined): Promise<Response> {
  const attachment: Omit<SocketAttachment, "connectedAt"> = {
    sessionId: principal?.sessionId ?? null,
    expiresAt: principal?.expiresAt ?? null,
  };
  const headers = new Headers(request.headers);
  headers.set(HUB_MESH_HEADER, meshId);
  headers.set(HUB_ATTACHMENT_HEADER, JSON.stringify(attachment));
  // A fresh URL: the access_token query parameter never reaches the hub.
  const forwarded = new Request("https://mesh-hub/notify", { method: "GET", headers });
  return callHubIdempotent("upgrade", () => meshHub(env, meshId).fetch(forwarded.clone()));
}

export async function pushHealth(env: Env, meshId: string): Promise<HubHealth> {
  return meshHub(env, meshId).health(meshId);
}
