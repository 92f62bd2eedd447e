// Push WebSocket routes (PROTOCOL.md section 6): the upgrade is authorized here (read access),
// then handed to the mesh's hub, which holds the hibernatable socket.
import type { Handler } from "../request-context";
import { HttpError } from "../lib/errors";
import { openPushSocket, pushHealth } from "../objects/push";
import { admitSessionSocket } from "../identity/socket-meshes";

export const upgrade: Handler = async (request, env) => {
  // A HEAD (routed as GET) can never upgrade; it gets the answer a plain GET gets.
  if (request.isHead === true || (request.headers.get("Upgrade") ?? "").toLowerCase() !== "websocket") {
    throw new HttpError("upgrade_required", "This route only accepts a WebSocket upgrade (Upgrade: websocket).");
  }
  // Upgrades are rare next to IO: a session's socket is recorded (for revocation fan-out) and its
  // liveness re-read uncached here, never on the IO path.
  const sessionId = request.principal?.sessionId ?? null;
  if (sessionId !== null) await admitSessionSocket(env.DB, sessionId, request.meshId);
  return openPushSocket(env, request.meshId, request, request.principal);
};

export const health: Handler = async (request, env) => Response.json(await pushHealth(env, request.meshId));
