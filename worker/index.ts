// meshbox Worker entry: HTTP through the route table, cron through maintenance, and the
// MeshHub Durable Object class (one per mesh).
import type { Env } from "./env";
import { ConfigError, readConfig, type Config } from "./lib/config";
import { errorResponse, unavailable } from "./lib/errors";
import { routerFor } from "./router";
import { routable } from "./pipeline";
import { runScheduled } from "./routes/maintenance";

export { MeshHub } from "../durable-objects/mesh-hub";

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    let config: Config;
    try {
      config = readConfig(env);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      // Refuse to serve rather than serve with a setting that can lose data; the operator fixes the var.
      console.error(JSON.stringify({ level: "error", msg: "configuration refused", error: err.message }));
      return errorResponse(unavailable(err.message));
    }
    const router = routerFor(config.mountPrefix);
    return router.fetch(routable(request), env, ctx);
  },

  async scheduled(controller: ScheduledController, env: Env, ctx: ExecutionContext): Promise<void> {
    await runScheduled(controller, env, ctx);
  },
} satisfies ExportedHandler<Env>;
