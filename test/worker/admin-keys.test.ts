import { describe, expect, it } from "vitest";
import { ADMIN_TOKEN, adminEnv, asAdmin, call, jsonBody } from "./admin-support";

const target = adminEnv();

async function createKey(body: Record<string, unknown>) {
  return call(target, "/admin/keys", asAdmin({ method: "POST", ...jsonBody(body) }));
}

describe("admin auth", () => {
  it("refuses every admin route without a token with 401 unauthorized", async () => {
    const routes: [string, string][] = [
      ["GET", "/admin/keys"],
      ["POST", "/admin/keys"],
      ["DELETE", "/admin/keys/0123456789abcdef"],
      ["GET", "/admin/sessions"],
      ["DELETE", "/admin/sessions/x"],
      ["GET", "/admin/meshes/main"],
      ["DELETE", "/admin/meshes/main"],
      ["POST", "/admin/meshes/main/reconcile"],
      ["POST", "/admin/maintenance"],
      ["POST", "/admin/mesh-ids"],
    ];
    for (const [method, path] of routes) {
      const res = await call(target, path, { method });
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(((await res.json()) as { error: string }).error).toBe("unauthorized");
    }
  });

  it("refuses a wrong admin token with 401", async () => {
    const res = await call(target, "/admin/keys", asAdmin({}, `${ADMIN_TOKEN}x`));
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: string }).error).toBe("unauthorized");
  });

  it("refuses a mesh bearer or session-looking token in place of the admin token", async () => {
    const res = await call(target, "/admin/keys", asAdmin({}, "a".repeat(64)));
    expect(res.status).toBe(401);
  });

  it("answers 503 auth_not_configured when ADMIN_TOKEN is not set", async () => {
    const res = await call(adminEnv({ ADMIN_TOKEN: undefined }), "/admin/keys", asAdmin());
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: string }).error).toBe("auth_not_configured");
  });
});

describe("POST /sync/admin/keys", () => {
  it("creates a key and shows the secret once, with its record", async () => {
    const res = await createKey({ name: "phone app", meshPattern: "team-*", access: "readonly" });
    expect(res.status).toBe(201);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{16}$/),
      key: expect.stringMatching(/^mbk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/),
      name: "phone app",
      meshPattern: "team-*",
      access: "readonly",
      createdAt: expect.any(String),
      lastUsedAt: null,
      revokedAt: null,
    });
    expect(body.key).toContain(body.id as string);
  });

  it("defaults access to full", async () => {
    const res = await createKey({ name: "default access", meshPattern: "*" });
    expect(res.status).toBe(201);
    expect(((await res.json()) as { access: string }).access).toBe("full");
  });

  it("answers 400 for a missing name, a bad pattern, a bad access or a non-JSON body", async () => {
    for (const body of [
      { meshPattern: "*" },
      { name: "x", meshPattern: "bad pattern" },
      { name: "x", meshPattern: "*", access: "admin" },
    ]) {
      const res = await createKey(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as { error: string }).error).toBe("bad_request");
    }
    const garbage = await call(target, "/admin/keys", asAdmin({ method: "POST", body: "{not json" }));
    expect(garbage.status).toBe(400);
  });

  it("creates a key that can mint a session", async () => {
    const created = (await (await createKey({ name: "minting", meshPattern: "*" })).json()) as { key: string };
    const res = await call(target, "/auth/session", {
      method: "POST",
      headers: { Authorization: `Bearer ${created.key}`, "CF-Connecting-IP": crypto.randomUUID() },
    });
    expect(res.status).toBe(201);
  });
});

describe("GET /sync/admin/keys", () => {
  it("lists keys with their records and never a secret or hash", async () => {
    const created = (await (await createKey({ name: "listed", meshPattern: "m1" })).json()) as { id: string };
    const res = await call(target, "/admin/keys", asAdmin());
    expect(res.status).toBe(200);
    const { keys } = (await res.json()) as { keys: Record<string, unknown>[] };
    const mine = keys.find((k) => k.id === created.id);
    expect(mine).toEqual({
      id: created.id,
      name: "listed",
      meshPattern: "m1",
      access: "full",
      createdAt: expect.any(String),
      lastUsedAt: null,
      revokedAt: null,
    });
    for (const key of keys) {
      expect(key).not.toHaveProperty("key");
      expect(key).not.toHaveProperty("keyHash");
    }
  });
});

describe("DELETE /sync/admin/keys/:id", () => {
  it("revokes the key: it can no longer mint sessions, and the list shows revokedAt", async () => {
    const created = (await (await createKey({ name: "to revoke", meshPattern: "*" })).json()) as { id: string; key: string };
    const res = await call(target, `/admin/keys/${created.id}`, asAdmin({ method: "DELETE" }));
    expect(res.status).toBe(200);
    const { key } = (await res.json()) as { key: Record<string, unknown> };
    expect(key).toMatchObject({ id: created.id, revokedAt: expect.any(String), sessionsRevoked: 0 });

    const mint = await call(target, "/auth/session", {
      method: "POST",
      headers: { Authorization: `Bearer ${created.key}`, "CF-Connecting-IP": crypto.randomUUID() },
    });
    expect(mint.status).toBe(401);

    const { keys } = (await (await call(target, "/admin/keys", asAdmin())).json()) as { keys: { id: string; revokedAt: string | null }[] };
    expect(keys.find((k) => k.id === created.id)?.revokedAt).toEqual(key.revokedAt);
  });

  it("revokes the sessions the key minted", async () => {
    const created = (await (await createKey({ name: "with session", meshPattern: "*" })).json()) as { id: string; key: string };
    const mint = await call(target, "/auth/session", {
      method: "POST",
      headers: { Authorization: `Bearer ${created.key}`, "CF-Connecting-IP": crypto.randomUUID() },
    });
    expect(mint.status).toBe(201);
    const res = await call(target, `/admin/keys/${created.id}`, asAdmin({ method: "DELETE" }));
    expect(((await res.json()) as { key: { sessionsRevoked: number } }).key.sessionsRevoked).toBe(1);
  });

  it("answers 404 for an unknown key id", async () => {
    const res = await call(target, "/admin/keys/ffffffffffffffff", asAdmin({ method: "DELETE" }));
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: string }).error).toBe("not_found");
  });

  it("answers 400 for a malformed key id", async () => {
    const res = await call(target, "/admin/keys/not.a%20key", asAdmin({ method: "DELETE" }));
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: "bad_request", message: "The key id is malformed." });
  });
});
