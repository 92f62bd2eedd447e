// Push WebSocket routes (PROTOCOL.md section 6): the upgrade is authorized here (read access),
// then handed to the mesh's hub, which holds the hibernatable socket.
import type { Handler } from "../request-context";
import { HttpError } from "../lib/errors";
import { openPushSocket, pushHealth } from "../objects/push";

export const upgrade: Handler = (request, env) => {
  // A HEAD (routed as GET) can never upgrade; it gets the answer a plain GET gets.
  if (request.isHead === true || (request.headers.get("Upgrade") ?? "").toLowerCase() !== "websocket") {
    throw new HttpError("upgrade_required", "This route only accepts a WebSocket upgrade (Upgrade: websocket).");
  }
  return openPushSocket(env, request.meshId, request, request.principal);
};

export const health: Handler = async (request, env) => Response.json(await pushHealth(env, request.meshId));
