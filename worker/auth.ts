// Who is calling, and what may they do. PLACEHOLDER until the auth issue lands: open mode only
// (ALLOW_OPEN_ACCESS=1), otherwise 503 auth_not_configured. The auth issue replaces this module
// but keeps these three exports (withMesh, requireAccess, requireAdmin) and their contracts.
import type { Env } from "./env";
import type { Access, Handler, MeshRequest, Principal } from "./request-context";
import { HttpError } from "./lib/errors";
import { readConfig } from "./lib/config";
import { validateMeshId } from "./lib/mesh-id";

/** Validates the :mesh route parameter before anything else and stores it on the request. */
export const withMesh: Handler = (request) => {
  request.meshId = validateMeshId(request.params.mesh);
};

/** Route guard: authenticates the caller for the request's mesh with the given access. */
export function requireAccess(access: Access): Handler {
  return async (request: MeshRequest, env: Env): Promise<void> => {
    request.principal = await authorizeMesh(request, env, request.meshId, access);
  };
}

export async function authorizeMesh(
  _request: Request,
  env: Env,
  _meshId: string,
  _access: Access,
): Promise<Principal> {
  if (readConfig(env).allowOpenAccess) {
    return { kind: "open", scope: "full", sessionId: null, subject: null, expiresAt: null };
  }
  throw new HttpError(
    "auth_not_configured",
    "No auth is configured: set MESH_TOKEN_SECRET or SESSION_SIGNING_KEY (wrangler secret put), or ALLOW_OPEN_ACCESS=1 for local development.",
  );
}

export const requireAdmin: Handler = () => {
  throw new HttpError("unavailable", "The admin API is not available yet.");
};
