import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";

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
