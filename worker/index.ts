// meshbox Worker entry: HTTP through the route table, cron through maintenance, and the
// MeshHub Durable Object class (one per mesh).
import type { Env } from "./env";
import { readConfig } from "./lib/config";
import { routerFor } from "./router";
import { routable } from "./pipeline";
import { runScheduled } from "./routes/maintenance";

export { MeshHub } from "../durable-objects/mesh-hub";

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const router = routerFor(readConfig(env).mountPrefix);
    return router.fetch(routable(request), env, ctx);
  },

  async scheduled(controller: ScheduledController, env: Env, ctx: ExecutionContext): Promise<void> {
    await runScheduled(controller, env, ctx);
  },
} satisfies ExportedHandler<Env>;
