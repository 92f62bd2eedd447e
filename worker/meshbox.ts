// meshbox as a library: everything an app needs to serve meshbox from its own Worker, next to its
// own routes. The declarations below are the library's documentation (README "Use as a library").
//
//   import { createMeshbox } from "@meshbox-sync/server";
//   const meshbox = createMeshbox({ authorize: (request, meshId) => ... });
//   export const MeshHub = meshbox.MeshHub;
//   export default {
//     fetch(request, env, ctx) {
//       if (new URL(request.url).pathname.startsWith("/sync")) return meshbox.fetch(request, env, ctx);
//       return new Response("my app");
//     },
//     scheduled: meshbox.scheduled,
//   };
//
// The app's wrangler config binds BUCKET (R2), DB (D1, with this package's migrations), MESH_HUB
// (Durable Object namespace of the exported MeshHub class, a `new_sqlite_classes` migration) and a
// cron trigger for maintenance. Vars and secrets configure the rest (README "Configuration");
// an option given here wins over its var.
import type { Env } from "./env";
import { ConfigError, overlayConfig, readConfig, type ConfigOverrides, type Limits } from "./lib/config";
import { errorResponse, unavailable } from "./lib/errors";
import { routable } from "./pipeline";
import { installHooks, type AuditHook, type AuthorizeHook } from "./hooks";
import { routerFor } from "./router";
import { runScheduled } from "./routes/maintenance";
import { MeshHub } from "../durable-objects/mesh-hub";

export type { Env as MeshboxEnv } from "./env";
export type { Limits } from "./lib/config";
export type { AuditEvent, AuditHook, AuthorizeContext, AuthorizeHook, Grant } from "./hooks";
export { HttpError } from "./lib/errors";
export { MeshHub };

export interface MeshboxOptions {
  /**
   * Where meshbox's routes live, e.g. "/sync" (the default, or the MOUNT_PREFIX var) or "/api/sync";
   * "" or "/" mounts it at the root. The app routes requests under it to `fetch`; meshbox answers
   * a JSON 404 for anything else it is handed.
   */
  mountPrefix?: string;
  /** Body limits in bytes, per class (defaults and vars: README "Configuration"). */
  limits?: Partial<Limits>;
  /** CORS: "*" (the default) or an exact allowlist of origins; replaces CORS_ORIGINS. */
  cors?: { origins: "*" | string[] };
  /**
   * Who may use a mesh: replaces the built-in modes (sessions, mesh bearer, open) on the /io and
   * /notify routes; `context.builtIn()` runs them for a hook that only adds a credential of its own.
   * Auth sessions (POST /auth/session) and the admin API keep their own rules.
   */
  authorize?: AuthorizeHook;
  /** Hears every completed storage write and delete, after the response is sent. */
  audit?: AuditHook;
}

export interface Meshbox {
  /** Serves every meshbox route under the mount prefix. */
  fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response>;
  /** Cron maintenance (expired sessions, deleted change bodies, idle meshes, index samples). */
  scheduled(controller: ScheduledController, env: Env, ctx: ExecutionContext): Promise<void>;
  /** The per-mesh Durable Object class: export it from the Worker under the name MESH_HUB binds. */
  MeshHub: typeof MeshHub;
}

function checkLimits(limits: Partial<Limits>): void {
  for (const [name, value] of Object.entries(limits)) {
    if (value !== undefined && !(typeof value === "number" && Number.isFinite(value) && value >= 0)) {
      throw new TypeError(`createMeshbox: limits.${name} must be a non-negative number of bytes, not ${String(value)}`);
    }
  }
}

/** One meshbox instance; create it once at module scope, not per request. */
export function createMeshbox(options: MeshboxOptions = {}): Meshbox {
  checkLimits(options.limits ?? {});
  const overrides: ConfigOverrides = {
    mountPrefix: options.mountPrefix,
    corsOrigins: options.cors?.origins,
    limits: options.limits,
  };
  const hooks = { authorize: options.authorize ?? null, audit: options.audit ?? null };

  // The env the runtime passes is the same object for the isolate's life: one view of it, with
  // the options applied to its config and the hooks attached, is built once and handed down.
  const views = new WeakMap<Env, Env>();
  const viewOf = (env: Env): Env => {
    let view = views.get(env);
    if (view === undefined) {
      view = overlayConfig(env, overrides);
      installHooks(view, hooks);
      views.set(env, view);
    }
    return view;
  };

  return {
    async fetch(request, env, ctx) {
      let view: Env;
      try {
        view = viewOf(env);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        // Refuse to serve rather than serve with a setting that can lose data; the operator fixes the var.
        console.error(JSON.stringify({ level: "error", msg: "configuration refused", error: err.message }));
        return errorResponse(unavailable(err.message));
      }
      return routerFor(readConfig(view).mountPrefix).fetch(routable(request), view, ctx);
    },
    async scheduled(controller, env, ctx) {
      await runScheduled(controller, viewOf(env), ctx);
    },
    MeshHub,
  };
}
