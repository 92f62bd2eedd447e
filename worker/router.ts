// The route table, readable top to bottom. The whole pipeline is the Router(...) line:
// request id and preflight first, errors to JSON in one place, CORS and the request log last.
// HEAD is routed as GET (pipeline.ts `routable`), so every GET row below also answers HEAD.
import { Router } from "itty-router";
import type { Env } from "./env";
import type { Handler, MeshRequest } from "./request-context";
import { toErrorResponse, methodNotAllowed, notFound } from "./lib/errors";
import { beginRequest, preflight, orNotFound, withoutBodyForHead, corsify, logRequest, clientMethod } from "./pipeline";
import { withMesh, requireAccess, requireAdmin } from "./auth";
import * as service from "./routes/service";
import * as io from "./routes/io";
import * as storedFiles from "./routes/stored-files";
import * as notify from "./routes/notify";
import * as recovery from "./routes/recovery";
import * as authRoutes from "./routes/auth";
import * as admin from "./routes/admin";
import * as adminGrants from "./routes/admin-grants";
import * as adminShards from "./routes/admin-shards";
import * as dashboard from "./routes/dashboard";

const read = requireAccess("read");
const write = requireAccess("write");

/** Answers 405 for a known path with a method it does not serve. A GET route also serves HEAD. */
const only = (...served: string[]): Handler => {
  const allowed = served.includes("GET") ? [...served, "HEAD"] : served;
  return (request) => {
    throw methodNotAllowed(clientMethod(request), allowed);
  };
};

export function buildRouter(base: string) {
  const router = Router<MeshRequest, [Env, ExecutionContext]>({
    base,
    before: [beginRequest, preflight],
    catch: toErrorResponse,
    finally: [orNotFound, withoutBodyForHead, corsify, logRequest],
  });
  const r = router;
  r.get("/", service.landing);
  r.all("/", only("GET"));
  r.get("/openapi.json", service.openApi);
  r.all("/openapi.json", only("GET"));
  r.get("/health", service.health);
  r.all("/health", only("GET"));

  // Sessions (auth issue): exchange an API key for a short-lived JWT; revoke your own.
  r.post("/auth/session", authRoutes.createSession);
  r.delete("/auth/session", authRoutes.deleteSession);
  r.all("/auth/session", only("POST", "DELETE"));

  // Sync IO (PROTOCOL.md section 2). Mesh id first, then auth, then the handler.
  r.get("/io/:mesh/health", withMesh, read, io.health);
  r.all("/io/:mesh/health", only("GET"));
  r.get("/io/:mesh/file", withMesh, read, io.getFile);
  r.put("/io/:mesh/file", withMesh, write, io.putFile);
  r.delete("/io/:mesh/file", withMesh, write, io.deleteFile);
  r.all("/io/:mesh/file", only("GET", "PUT", "DELETE"));
  r.post("/io/:mesh/metadata", withMesh, read, io.metadata);
  r.post("/io/:mesh/list-files", withMesh, read, io.listFiles);
  r.post("/io/:mesh/list-folders", withMesh, read, io.listFolders);
  r.post("/io/:mesh/ensure-folder", withMesh, read, io.ensureFolder);
  r.all("/io/:mesh/metadata", only("POST"));
  r.all("/io/:mesh/list-files", only("POST"));
  r.all("/io/:mesh/list-folders", only("POST"));
  r.all("/io/:mesh/ensure-folder", only("POST"));

  // Durable stored files (section 4).
  r.get("/io/:mesh/stored-file", withMesh, read, storedFiles.getStoredFile);
  r.put("/io/:mesh/stored-file", withMesh, write, storedFiles.putStoredFile);
  r.delete("/io/:mesh/stored-file", withMesh, write, storedFiles.deleteStoredFile);
  r.all("/io/:mesh/stored-file", only("GET", "PUT", "DELETE"));
  r.post("/io/:mesh/stored-file-metadata", withMesh, read, storedFiles.storedFileMetadata);
  r.all("/io/:mesh/stored-file-metadata", only("POST"));

  // Push invalidations (section 6).
  r.get("/notify/:mesh/health", withMesh, read, notify.health);
  r.all("/notify/:mesh/health", only("GET"));
  r.get("/notify/:mesh", withMesh, read, notify.upgrade);
  r.all("/notify/:mesh", only("GET"));

  // Recovery wrappers (section 5): the locator is the capability.
  r.get("/recovery/:locator", recovery.getWrapper);
  r.put("/recovery/:locator", recovery.putWrapper);
  r.all("/recovery/:locator", only("GET", "PUT"));

  // Admin API (operations issue), admin bearer only.
  r.get("/admin/keys", requireAdmin, admin.listKeys);
  r.post("/admin/keys", requireAdmin, admin.createKey);
  r.delete("/admin/keys/:id", requireAdmin, admin.revokeKey);
  r.get("/admin/sessions", requireAdmin, admin.listSessions);
  r.delete("/admin/sessions/:jti", requireAdmin, admin.revokeSession);
  r.get("/admin/meshes", requireAdmin, admin.listMeshes);
  r.get("/admin/usage", requireAdmin, admin.tenantUsage);
  r.get("/admin/meshes/:mesh", requireAdmin, withMesh, admin.meshStats);
  r.delete("/admin/meshes/:mesh", requireAdmin, withMesh, admin.wipeMesh);
  r.post("/admin/meshes/:mesh/reconcile", requireAdmin, withMesh, admin.reconcileMesh);
  r.get("/admin/meshes/:mesh/export", requireAdmin, withMesh, admin.exportMesh);
  r.post("/admin/meshes/:mesh/import", requireAdmin, withMesh, admin.importMesh);
  r.post("/admin/maintenance", requireAdmin, admin.runMaintenanceNow);
  r.post("/admin/mesh-ids", requireAdmin, admin.issueMeshId);
  r.post("/admin/migrate-upstream", requireAdmin, admin.migrateFromUpstream);
  r.get("/admin/grants", requireAdmin, adminGrants.listGrants);
  r.post("/admin/grants", requireAdmin, adminGrants.addGrant);
  r.delete("/admin/grants/:id", requireAdmin, adminGrants.revokeGrant);
  r.get("/admin/recovery", requireAdmin, admin.recoveryStats);
  r.get("/admin/meshes/:mesh/activity", requireAdmin, withMesh, admin.meshActivity);
  r.get("/admin/shards", requireAdmin, adminShards.shardStatus);
  r.post("/admin/shards/move", requireAdmin, adminShards.moveMesh);
  r.post("/admin/shards/rebalance", requireAdmin, adminShards.rebalance);
  // The dashboard's static page and assets carry no data: no token (the page asks for it).
  r.get("/admin/ui", dashboard.page);
  r.get("/admin/ui/app.js", dashboard.script);
  r.get("/admin/ui/app.css", dashboard.styles);
  r.all("/admin/keys", only("GET", "POST"));
  r.all("/admin/keys/:id", only("DELETE"));
  r.all("/admin/sessions", only("GET"));
  r.all("/admin/sessions/:jti", only("DELETE"));
  r.all("/admin/meshes", only("GET"));
  r.all("/admin/usage", only("GET"));
  r.all("/admin/meshes/:mesh", only("GET", "DELETE"));
  r.all("/admin/meshes/:mesh/reconcile", only("POST"));
  r.all("/admin/meshes/:mesh/export", only("GET"));
  r.all("/admin/meshes/:mesh/import", only("POST"));
  r.all("/admin/maintenance", only("POST"));
  r.all("/admin/mesh-ids", only("POST"));
  r.all("/admin/migrate-upstream", only("POST"));
  r.all("/admin/grants", only("GET", "POST"));
  r.all("/admin/shards", only("GET"));
  r.all("/admin/shards/move", only("POST"));
  r.all("/admin/shards/rebalance", only("POST"));
  r.all("/admin/grants/:id", only("DELETE"));
  r.all("/admin/recovery", only("GET"));
  r.all("/admin/meshes/:mesh/activity", only("GET"));
  r.all("/admin/ui", only("GET"));
  r.all("/admin/ui/app.js", only("GET"));
  r.all("/admin/ui/app.css", only("GET"));

  r.all("*", (): never => { throw notFound("No such route."); });
  return router;
}

const routers = new Map<string, ReturnType<typeof buildRouter>>();

/** One router per mount prefix (the prefix is configuration), built once per isolate. */
export function routerFor(base: string) {
  let router = routers.get(base);
  if (!router) {
    router = buildRouter(base);
    routers.set(base, router);
  }
  return router;
}
