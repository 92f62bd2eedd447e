// GET /sync/admin/ui: the dashboard's static page and assets, served with a strict CSP, needing
// no token, at the default and at a library's mount prefix.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createMeshbox } from "../../worker/meshbox";
import type { Env } from "../../worker/env";
import { adminEnv, call } from "./admin-support";

const target = adminEnv();

function csp(res: Response): Map<string, string> {
  const header = res.headers.get("Content-Security-Policy") ?? "";
  return new Map(header.split(";").map((d) => d.trim()).filter(Boolean).map((d) => {
    const [name = "", ...values] = d.split(/\s+/);
    return [name, values.join(" ")] as [string, string];
  }));
}

describe("GET /sync/admin/ui", () => {
  it("answers the page as HTML with a strict CSP and without a token", async () => {
    const res = await call(target, "/admin/ui");
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toBe("text/html; charset=utf-8");
    const policy = csp(res);
    expect(policy.get("default-src")).toBe("'none'");
    expect(policy.get("script-src")).toBe("'self'");
    expect(policy.get("style-src")).toBe("'self'");
    expect(policy.get("connect-src")).toBe("'self'");
    expect(policy.get("form-action")).toBe("'none'");
    expect(policy.get("frame-ancestors")).toBe("'none'");
    expect(res.headers.get("Content-Security-Policy")).not.toContain("unsafe");
    expect(res.headers.get("X-Content-Type-Options")).toBe("nosniff");
    expect(res.headers.get("Referrer-Policy")).toBe("no-referrer");
    const html = await res.text();
    expect(html).toContain("<title>meshbox admin</title>");
    expect(html).toContain('<script src="ui/app.js" defer></script>');
  });

  it("holds no inline script, no inline style and no inline event handler (the CSP forbids them)", async () => {
    const html = await (await call(target, "/admin/ui")).text();
    expect(html.match(/<script(?![^>]*\bsrc=)[^>]*>/g)).toBeNull();
    expect(html.match(/<style\b/g)).toBeNull();
    expect(html.match(/\son[a-z]+\s*=/gi)).toBeNull();
    expect(html.match(/\sstyle\s*=/gi)).toBeNull();
  });

  it("signs in through a POST form and keeps the token out of URLs: sent only as an Authorization header", async () => {
    const html = await (await call(target, "/admin/ui")).text();
    expect(html).toMatch(/<form id="sign-in-form" method="post"/);
    const js = await (await call(target, "/admin/ui/app.js")).text();
    expect(js).toContain('Authorization: "Bearer " + t');
    expect(js).toContain("sessionStorage");
    expect(js).not.toMatch(/document\.cookie|localStorage|[?&]token=/);
  });

  it("serves its script and styles with their types and the same CSP", async () => {
    const js = await call(target, "/admin/ui/app.js");
    expect(js.status).toBe(200);
    expect(js.headers.get("Content-Type")).toBe("text/javascript; charset=utf-8");
    expect(csp(js).get("script-src")).toBe("'self'");
    const css = await call(target, "/admin/ui/app.css");
    expect(css.status).toBe(200);
    expect(css.headers.get("Content-Type")).toBe("text/css; charset=utf-8");
  });

  it("answers 405 to other methods", async () => {
    for (const path of ["/admin/ui", "/admin/ui/app.js", "/admin/ui/app.css"]) {
      for (const method of ["POST", "PUT", "DELETE"]) {
        const res = await call(target, path, { method });
        expect(res.status).toBe(405);
        expect(((await res.json()) as { error: string }).error).toBe("method_not_allowed");
      }
    }
  });

  it("is served under a library's mount prefix, with assets beside it", async () => {
    const meshbox = createMeshbox({ mountPrefix: "/api/sync" });
    for (const path of ["/api/sync/admin/ui", "/api/sync/admin/ui/app.js"]) {
      const ctx = createExecutionContext();
      const res = await meshbox.fetch(new Request(`http://app.test${path}`), { ...env, LOG_REQUESTS: "0" } as Env, ctx);
      await res.arrayBuffer();
      await waitOnExecutionContext(ctx);
      expect(res.status).toBe(200);
    }
  });
});
