import { describe, expect, it } from "vitest";
import { checkMeshIdChecksum } from "../../worker/lib/mesh-id";
import { adminEnv, asAdmin, call } from "./admin-support";

const SECRET = "ops-checksum-secret-0123456789";

describe("POST /sync/admin/mesh-ids", () => {
  it("issues a checksummed <uuid>.<tag> id that the deployment accepts", async () => {
    const target = adminEnv({ MESH_ID_CHECKSUM_SECRET: SECRET, REQUIRE_CHECKSUMMED_MESH_IDS: "1" });
    const res = await call(target, "/admin/mesh-ids", asAdmin({ method: "POST" }));
    expect(res.status).toBe(201);
    const { meshId } = (await res.json()) as { meshId: string };
    expect(meshId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.[A-Za-z0-9_-]{11}$/);
    await expect(checkMeshIdChecksum(meshId, { secret: SECRET, required: true })).resolves.toBe(meshId);
    const health = await call(target, `/io/${meshId}/health`);
    expect(health.status).toBe(200);
  });

  it("issues a different id each time", async () => {
    const target = adminEnv({ MESH_ID_CHECKSUM_SECRET: SECRET });
    const a = (await (await call(target, "/admin/mesh-ids", asAdmin({ method: "POST" }))).json()) as { meshId: string };
    const b = (await (await call(target, "/admin/mesh-ids", asAdmin({ method: "POST" }))).json()) as { meshId: string };
    expect(a.meshId).not.toBe(b.meshId);
  });

  it("answers 503 unavailable when MESH_ID_CHECKSUM_SECRET is not set", async () => {
    const res = await call(adminEnv(), "/admin/mesh-ids", asAdmin({ method: "POST" }));
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({
      error: "unavailable",
      message: "Checksummed mesh ids need MESH_ID_CHECKSUM_SECRET: set it with `wrangler secret put MESH_ID_CHECKSUM_SECRET`.",
    });
  });

  it("answers GET with 405 and the allowed method", async () => {
    const res = await call(adminEnv(), "/admin/mesh-ids", asAdmin());
    expect(res.status).toBe(405);
    expect(res.headers.get("Allow")).toBe("POST");
  });
});
