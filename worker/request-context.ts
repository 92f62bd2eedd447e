// What the pipeline learns about a request before a handler runs.
import type { IRequest } from "itty-router";
import type { Env } from "./env";

export type Access = "read" | "write";
export type Scope = "full" | "readonly";

/** Who is calling and what they may do. */
export interface Principal {
  /** "app": admitted by the embedding app's authorize hook (createMeshbox). */
  kind: "open" | "bearer" | "session" | "app" | "idp";
  scope: Scope;
  /** JWT jti for sessions, else null (identity-provider tokens are not recorded). */
  sessionId: string | null;
  subject: string | null;
  /** Epoch ms when the credential stops being valid, or null. */
  expiresAt: number | null;
}

export type MeshRequest = IRequest & {
  /** Set by withMesh on /io and /notify routes. */
  meshId: string;
  /** Set by requireAccess. */
  principal: Principal;
  /** Set first thing, for logs and the X-Request-Id response header. */
  requestId: string;
  startedAt: number;
  /**
   * True when the client sent HEAD. HEAD is routed as GET and answered without a body
   * (pipeline.ts); handlers of object routes read only metadata when it is set.
   */
  isHead?: boolean;
};

/** Every step of a route (guards and handlers) has this shape; guards return nothing to continue. */
export type Handler = (
  request: MeshRequest,
  env: Env,
  ctx: ExecutionContext,
) => Promise<Response | void> | Response | void;
