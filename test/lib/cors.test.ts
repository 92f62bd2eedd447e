import { describe, expect, it } from "vitest";
import { readConfig } from "../../worker/lib/config";
import { preflightResponse, withCors } from "../../worker/lib/cors";

const allowlist = readConfig({ CORS_ORIGINS: "https://app.example, https://other.example" });
const open = readConfig({});

describe("CORS", () => {
  it("allows any origin by default and exposes ETag", () => {
    const request = new Request("http://x/", { headers: { Origin: "https://anywhere.example" } });
    const res = withCors(request, new Response("ok"), open);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("*");
    expect(res.headers.get("Access-Control-Expose-Headers")).toContain("ETag");
    expect(res.headers.get("Vary")).toBeNull();
  });

  it("echoes an allowlisted origin with exactly one Vary: Origin, also on a preflight", () => {
    const request = new Request("http://x/", { method: "OPTIONS", headers: { Origin: "https://app.example" } });
    const res = withCors(request, preflightResponse(request, allowlist), allowlist);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("https://app.example");
    expect(res.headers.get("Vary")).toBe("Origin");
  });

  it("gives an origin outside the allowlist no Allow-Origin header", () => {
    const request = new Request("http://x/", { headers: { Origin: "https://evil.example" } });
    const res = withCors(request, new Response("ok"), allowlist);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBeNull();
    expect(res.headers.get("Vary")).toBe("Origin");
  });
});
