// A small typed client for the mesh's hub: one Durable Object per mesh, addressed by name.
import type { Env } from "./env";
import { HttpError, unavailable } from "./lib/errors";
import type { HubRefusal } from "../durable-objects/hub-api";

export function meshHub(env: Env, meshId: string) {
  return env.MESH_HUB.get(env.MESH_HUB.idFromName(meshId));
}

/** Turns a hub refusal (a value across RPC) into the HttpError the client sees. */
export function refusalToError(refusal: HubRefusal): HttpError {
  return new HttpError(refusal.code, refusal.message);
}

/**
 * Calls the hub for an idempotent operation (a read, a WebSocket upgrade), retrying errors the
 * runtime marks retryable (a hub reset or eviction mid-call) up to three attempts. Reads must
 * never fail transiently: a client reads a failed `GET manifest.json` as "no mesh here", and
 * stops trying to upgrade for an hour after five failed upgrades (PROTOCOL.md sections 3 and 6).
 */
export async function callHubIdempotent<T>(what: string, call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      const flags = (err ?? {}) as { retryable?: boolean; overloaded?: boolean };
      if (flags.retryable !== true || flags.overloaded === true || attempt >= 3) {
        console.error(JSON.stringify({ level: "error", msg: `hub ${what} failed`, error: String(err) }));
        throw unavailable("The mesh's hub is unavailable; retry.");
      }
    }
  }
}
