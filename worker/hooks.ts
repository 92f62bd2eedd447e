// The code an embedding app plugs into meshbox (createMeshbox options, worker/meshbox.ts): its own
// authorization and an audit callback. They are kept per env view (the object createMeshbox hands
// down as `env`), so two meshbox instances in one isolate never see each other's hooks.
import type { Env } from "./env";
import type { Access } from "./request-context";

/**
 * What an app's authorize hook admits a caller with. `access: "readonly"` gets 403 on PUT/DELETE.
 * `subject` reaches the audit hook (principal.subject). `expiresAt` (epoch ms) closes the caller's
 * push socket with 4401 at that time; HTTP requests are authorized one by one anyway.
 */
export interface Grant {
  access: "full" | "readonly";
  subject?: string | null;
  expiresAt?: number | null;
}

/** What the authorize hook is told besides the request and the (validated) mesh id. */
export interface AuthorizeContext {
  env: Env;
  /** What the route needs: "read" for GET/POST listings and the push socket, "write" for PUT/DELETE. */
  access: Access;
  /**
   * meshbox's own modes (session JWT, mesh bearer, open access, as configured by vars and
   * secrets): resolves to their grant, or rejects with their refusal (an HttpError). Lets a hook
   * accept its own credential and leave everything else to meshbox.
   */
  builtIn(): Promise<Grant>;
}

/**
 * Decides who may use a mesh, in place of meshbox's own modes, on every /io and /notify route.
 * Return a Grant to admit, null to refuse with 401 `unauthorized` (`WWW-Authenticate: Bearer`), or
 * throw an HttpError for another answer (e.g. 403). Under CONCEAL_DENIED=1 every 401/403 becomes the
 * same 404 as with the built-in modes. Any other thrown error is a 500: a bug in the hook.
 * The request's body must not be read (the route handler streams it).
 */
export type AuthorizeHook = (
  request: Request,
  meshId: string,
  context: AuthorizeContext,
) => Grant | null | Promise<Grant | null>;

/** What the audit hook hears: one completed storage write or delete (a 2xx answer). */
export interface AuditEvent {
  requestId: string;
  /** Epoch ms when the request completed. */
  at: number;
  op: "write" | "delete";
  /** Route pattern, e.g. "/sync/io/:mesh/file". */
  route: string;
  /** Mesh id, or null for recovery wrappers (they live outside every mesh). */
  mesh: string | null;
  /** The `path` query parameter as sent, or the recovery locator; null when there is none. */
  target: string | null;
  status: number;
  /** Declared request body size, or null when the client streamed without Content-Length. */
  bytesIn: number | null;
  /** How the caller authenticated ("open", "bearer", "session", "app"), and its subject. */
  principal: { kind: string; subject: string | null } | null;
}

/** Runs after the response is sent (waitUntil); its errors are logged and dropped. */
export type AuditHook = (event: AuditEvent, env: Env) => void | Promise<void>;

export interface Hooks {
  authorize: AuthorizeHook | null;
  audit: AuditHook | null;
}

const installed = new WeakMap<object, Hooks>();

export function installHooks(env: object, hooks: Hooks): void {
  installed.set(env, hooks);
}

const NONE: Hooks = { authorize: null, audit: null };

/** The hooks of the meshbox instance that handed down this env, or none. */
export function hooksOf(env: object): Hooks {
  return installed.get(env) ?? NONE;
}
