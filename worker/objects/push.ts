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

/**
 * Called after the write is acknowledged-durable. A failure here must not fail the write: the
 * client's retry would be a no-op repeat, which sends no frame, so one retry, then a log line.
 */
export async function notifyInvalidation(env: Env, meshId: string, event: InvalidationEvent): Promise<void> {
  for (let attempt = 1; attempt <= 2; attempt++) {
    try {
      await meshHub(env, meshId).notify(meshId, { op: event.op, path: event.path, pathType: event.pathType, bytes: event.bytes });
      return;
    } catch (err) {
      if (attempt === 2) {
        console.error(JSON.stringify({ level: "error", msg: "push notify failed", mesh: meshId, error: String(err) }));
      }
    }
  }
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
