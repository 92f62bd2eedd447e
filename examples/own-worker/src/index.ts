// An app's own Worker: one route of its own (GET /hello) and meshbox mounted under /sync, with the
// app deciding who may use a mesh. The app token here is a stand-in for whatever the app already
// issues (its session cookie, its own JWT): `Bearer app-user-<meshId>` opens exactly that mesh, and
// `Bearer app-viewer-<meshId>` opens it read-only. Anything else is refused.
import { createMeshbox, HttpError, type Grant, type MeshboxEnv } from "@meshbox-sync/server";

const meshbox = createMeshbox({
  mountPrefix: "/sync",
  authorize(request: Request, meshId: string): Grant | null {
    const header = request.headers.get("Authorization") ?? "";
    if (!header.startsWith("Bearer ")) return null; // 401: no app credential at all
    const token = header.slice("Bearer ".length);
    if (token === `app-user-${meshId}`) return { access: "full", subject: `user:${meshId}` };
    if (token === `app-viewer-${meshId}`) return { access: "readonly", subject: `viewer:${meshId}` };
    // A real app credential for another mesh: the caller is known but not allowed here.
    throw new HttpError("forbidden", "This app token does not open this mesh.");
  },
});

// wrangler binds MESH_HUB to this export (wrangler.toml [[durable_objects.bindings]]).
export const MeshHub = meshbox.MeshHub;

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === "/sync" || url.pathname.startsWith("/sync/")) return meshbox.fetch(request, env, ctx);
    if (request.method === "GET" && url.pathname === "/hello") {
      return Response.json({ hello: "from the app", sync: `${url.origin}/sync` });
    }
    return Response.json({ error: "not_found", message: "No such route." }, { status: 404 });
  },
  scheduled: meshbox.scheduled,
} satisfies ExportedHandler<MeshboxEnv>;
