// A small typed client for the mesh's hub: one Durable Object per mesh, addressed by name.
import type { Env } from "./env";
import { HttpError } from "./lib/errors";
import type { HubRefusal } from "../durable-objects/hub-api";

export function meshHub(env: Env, meshId: string) {
  return env.MESH_HUB.get(env.MESH_HUB.idFromName(meshId));
}

/** Turns a hub refusal (a value across RPC) into the HttpError the client sees. */
export function refusalToError(refusal: HubRefusal): HttpError {
  return new HttpError(refusal.code, refusal.message);
}
