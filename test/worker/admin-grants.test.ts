// The grants admin routes (GET/POST /sync/admin/grants, DELETE /sync/admin/grants/:id) against
// real local D1 through the worker.
import { describe, expect, it } from "vitest";
import { adminEnv, asAdmin, call, jsonBody } from "./admin-support";

const target = adminEnv();
const uniqueSub = () => `auth0|${crypto.randomUUID()}`;

async function addGrant(body: Record<string, unknown>) {
  return call(target, "/admin/grants", asAdmin({ method: "POST", ...jsonBody(body) }));
}

describe("admin grants", () => {
  it("creates a grant with 201, full access by default, and lists it by subject", async () => {
    const subject = uniqueSub();
    const res = await addGrant({ subject, meshPattern: "team-*" });
    expect(res.status).toBe(201);
    const grant = (await res.json()) as Record<string, unknown>;
    expect(grant).toEqual({ id: expect.stringMatching(/^grt_[0-9a-f]{16}$/), subject, meshPattern: "team-*", access: "full", createdAt: expect.any(String) });

    const readonly = (await (await addGrant({ subject, meshPattern: "shared", access: "readonly" })).json()) as { id: string };
    await addGrant({ subject: uniqueSub(), meshPattern: "other" });
    const listed = await call(target, `/admin/grants?sub=${encodeURIComponent(subject)}`, asAdmin());
    expect(listed.status).toBe(200);
    const { grants } = (await listed.json()) as { grants: { id: string; meshPattern: string; access: string }[] };
    expect(grants.map((g) => [g.id, g.meshPattern, g.access])).toEqual([
      [grant.id, "team-*", "full"],
      [readonly.id, "shared", "readonly"],
    ]);
  });

  it("lists every grant without a sub filter", async () => {
    const a = (await (await addGrant({ subject: uniqueSub(), meshPattern: "a-mesh" })).json()) as { id: string };
    const b = (await (await addGrant({ subject: uniqueSub(), meshPattern: "*", access: "readonly" })).json()) as { id: string };
    const { grants } = (await (await call(target, "/admin/grants", asAdmin())).json()) as { grants: { id: string }[] };
    const ids = grants.map((g) => g.id);
    expect(ids).toContain(a.id);
    expect(ids).toContain(b.id);
  });

  it("revokes a grant with 200 and the grant, then 404 for the same id", async () => {
    const subject = uniqueSub();
    const created = (await (await addGrant({ subject, meshPattern: "gone" })).json()) as { id: string };
    const res = await call(target, `/admin/grants/${created.id}`, asAdmin({ method: "DELETE" }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ grant: { id: created.id, subject, meshPattern: "gone", access: "full", createdAt: expect.any(String) } });
    const again = await call(target, `/admin/grants/${created.id}`, asAdmin({ method: "DELETE" }));
    expect(again.status).toBe(404);
    expect(await again.json()).toEqual({ error: "not_found", message: `No grant has the id ${created.id}.` });
    const { grants } = (await (await call(target, `/admin/grants?sub=${encodeURIComponent(subject)}`, asAdmin())).json()) as { grants: unknown[] };
    expect(grants).toEqual([]);
  });

  it("answers 400 for a bad subject, pattern, access or id", async () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ meshPattern: "m" }, "subject must be"],
      [{ subject: " padded ", meshPattern: "m" }, "subject must be"],
      [{ subject: "x".repeat(256), meshPattern: "m" }, "subject must be"],
      [{ subject: "u", meshPattern: "a*b" }, "meshPattern must be"],
      [{ subject: "u", meshPattern: "m", access: "write" }, 'access must be "full" or "readonly".'],
    ];
    for (const [body, message] of bad) {
      const res = await addGrant(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      const answer = (await res.json()) as { error: string; message: string };
      expect(answer.error).toBe("bad_request");
      expect(answer.message).toContain(message);
    }
    const badId = await call(target, "/admin/grants/not-a-grant", asAdmin({ method: "DELETE" }));
    expect(badId.status).toBe(400);
    expect(await badId.json()).toEqual({ error: "bad_request", message: "The grant id is malformed (grt_ and 16 hex digits)." });
    const twice = await call(target, "/admin/grants?sub=a&sub=b", asAdmin());
    expect(twice.status).toBe(400);
  });

  it("refuses the grants routes without the admin token (401) and other methods (405)", async () => {
    for (const [method, path] of [["GET", "/admin/grants"], ["POST", "/admin/grants"], ["DELETE", "/admin/grants/grt_0123456789abcdef"]]) {
      const res = await call(target, path as string, { method });
      expect(res.status, `${method} ${path}`).toBe(401);
    }
    const put = await call(target, "/admin/grants", asAdmin({ method: "PUT" }));
    expect(put.status).toBe(405);
    expect(put.headers.get("Allow")).toBe("GET, POST, HEAD");
    const get = await call(target, "/admin/grants/grt_0123456789abcdef", asAdmin({ method: "GET" }));
    expect(get.status).toBe(405);
    expect(get.headers.get("Allow")).toBe("DELETE");
  });
});
