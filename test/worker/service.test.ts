import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Env } from "../../worker/env";
import { ADMIN_TOKEN, adminEnv, call } from "./admin-support";

describe("GET /sync/health", () => {
  it("answers 200 JSON with no auth, naming the configured auth modes", async () => {
    const res = await SELF.fetch("http://meshbox.test/sync/health");
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toContain("application/json");
    expect(await res.json()).toEqual({ ok: true, service: "meshbox", auth: ["open"] });
  });

  it("answers an unknown route with a JSON 404", async () => {
    const res = await SELF.fetch("http://meshbox.test/sync/nope");
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: "not_found", message: "No such route." });
  });

  it("answers a path outside the mount prefix with a JSON 404 and CORS headers", async () => {
    for (const [method, url] of [["GET", "http://meshbox.test/"], ["POST", "http://meshbox.test/other/io/x/health"]] as const) {
      const res = await SELF.fetch(url, { method });
      expect(res.status).toBe(404);
      expect(res.headers.get("Access-Control-Allow-Origin")).toBe("*");
      expect(await res.json()).toEqual({ error: "not_found", message: "No such route." });
    }
  });

  it("answers a wrong method with 405 and Allow", async () => {
    const res = await SELF.fetch("http://meshbox.test/sync/health", { method: "POST" });
    expect(res.status).toBe(405);
    expect(res.headers.get("Allow")).toBe("GET, HEAD");
    expect(await res.json()).toMatchObject({ error: "method_not_allowed" });
  });

  it("answers a CORS preflight before any auth", async () => {
    const res = await SELF.fetch("http://meshbox.test/sync/io/main/file?path=/x", {
      method: "OPTIONS",
      headers: { Origin: "https://app.example", "Access-Control-Request-Method": "PUT" },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("*");
  });
});

describe("GET /sync (landing document)", () => {
  it("names the service, its docs, the OpenAPI path and the configured auth modes, never a secret", async () => {
    const target = adminEnv({ MESH_TOKEN_SECRET: "bearer-secret-not-to-leak" } as Partial<Env>);
    const res = await call(target, "");
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain("bearer-secret-not-to-leak");
    expect(text).not.toContain(ADMIN_TOKEN);
    const doc = JSON.parse(text) as { auth: string[] };
    expect(doc).toEqual({
      service: "meshbox",
      version: "0.2.0",
      docs: { protocol: "docs/PROTOCOL.md", client: "docs/CLIENT.md" },
      openapi: "/sync/openapi.json",
      auth: expect.arrayContaining(["session", "bearer"]) as unknown as string[],
    });
  });

  it("answers 405 for a POST to the landing path", async () => {
    expect((await call(adminEnv(), "", { method: "POST" })).status).toBe(405);
  });
});
