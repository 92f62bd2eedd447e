// MeshHub: one Durable Object per mesh. PLACEHOLDER skeleton; the hub issue implements it.
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../worker/env";

export class MeshHub extends DurableObject<Env> {
  override async fetch(_request: Request): Promise<Response> {
    return new Response("not implemented", { status: 503 });
  }
}
