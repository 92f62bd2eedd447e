// Push invalidations: the Worker tells the mesh's hub once a write is durable; the hub coalesces
// and sends frames (PROTOCOL.md section 6). CONTRACT STUB: the hub issue implements this.
import type { Env } from "../env";
import type { InvalidationEvent } from "../../durable-objects/hub-api";

export async function notifyInvalidation(_env: Env, _meshId: string, _event: InvalidationEvent): Promise<void> {
  throw new Error("push.notifyInvalidation: not implemented yet");
}
