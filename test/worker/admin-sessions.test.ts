import { describe, expect, it } from "vitest";
import { adminEnv, asAdmin, call, jsonBody, uniqueMesh } from "./admin-support";

const target = adminEnv();

interface SessionRecord {
  jti: string;
  keyId: string;
  subject: string;
  meshPattern: string;
  scope: string;
  issuedAt: string;
  expiresAt: string;
  revokedAt: string | null;
}

async function mint(meshPattern: string, body: Record<string, unknown> = {}) {
  const keyRes = await call(target, "/admin/keys", asAdmin({ method: "POST", ...jsonBody({ name: "sessions test", meshPattern }) }));
  const key = (await keyRes.json()) as { id: string; key: string };
  const res = await call(target, "/auth/session", {
    method: "POST",
    headers: { Authorization: `Bearer ${key.key}`, "CF-Connecting-IP": crypto.randomUUID(), "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (res.status !== 201) throw new Error(`mint: ${res.status} ${await res.text()}`);
  const session = (await res.json()) as { token: string; sessionId: string };
  return { keyId: key.id, ...session };
}

async function sessions(query = ""): Promise<SessionRecord[]> {
  const res = await call(target, `/admin/sessions${query}`, asAdmin());
  expect(res.status).toBe(200);
  return ((await res.json()) as { sessions: SessionRecord[] }).sessions;
}

describe("GET /sync/admin/sessions", () => {
  it("lists a minted session with its key, subject, mesh and scope", async () => {
    const mesh = uniqueMesh();
    const minted = await mint(mesh, { subject: "laptop", scope: "full" });
    const found = (await sessions()).find((s) => s.jti === minted.sessionId);
    expect(found).toEqual({
      jti: minted.sessionId,
      keyId: minted.keyId,
      subject: "laptop",
      meshPattern: mesh,
      scope: "full",
      issuedAt: expect.any(String),
      expiresAt: expect.any(String),
      revokedAt: null,
    });
  });

  it("filters by mesh: only sessions that can reach that mesh", async () => {
    const mine = uniqueMesh();
    const other = uniqueMesh();
    const a = await mint(mine);
    const b = await mint(other);
    const listed = (await sessions(`?mesh=${mine}`)).map((s) => s.jti);
    expect(listed).toContain(a.sessionId);
    expect(listed).not.toContain(b.sessionId);
  });

  it("honours limit and answers 400 for a bad limit or a bad mesh pattern", async () => {
    await mint(uniqueMesh());
    await mint(uniqueMesh());
    expect(await sessions("?limit=1")).toHaveLength(1);
    for (const query of ["?limit=0", "?limit=abc", "?mesh=bad%20pattern", "?limit=1&limit=2"]) {
      const res = await call(target, `/admin/sessions${query}`, asAdmin());
      expect(res.status, query).toBe(400);
      expect(((await res.json()) as { error: string }).error).toBe("bad_request");
    }
  });
});

describe("DELETE /sync/admin/sessions/:jti", () => {
  it("revokes the session: its token is refused on IO and the list shows revokedAt", async () => {
    const mesh = uniqueMesh();
    const closed = adminEnv({ ALLOW_OPEN_ACCESS: "0" });
    const minted = await mint(mesh);
    const before = await call(closed, `/io/${mesh}/health`, { headers: { Authorization: `Bearer ${minted.token}` } });
    expect(before.status).toBe(200);

    const res = await call(target, `/admin/sessions/${minted.sessionId}`, asAdmin({ method: "DELETE" }));
    expect(res.status).toBe(200);
    const { session } = (await res.json()) as { session: SessionRecord };
    expect(session).toMatchObject({ jti: minted.sessionId, revokedAt: expect.any(String) });

    const after = await call(closed, `/io/${mesh}/health`, { headers: { Authorization: `Bearer ${minted.token}` } });
    expect(after.status).toBe(401);
    const listed = (await sessions(`?mesh=${mesh}`)).find((s) => s.jti === minted.sessionId);
    expect(listed?.revokedAt).toBe(session.revokedAt);
  });

  it("answers 404 for an unknown session id", async () => {
    const res = await call(target, `/admin/sessions/${crypto.randomUUID()}`, asAdmin({ method: "DELETE" }));
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: "not_found" });
  });

  it("answers 400 for a malformed session id", async () => {
    const res = await call(target, "/admin/sessions/a%20b", asAdmin({ method: "DELETE" }));
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: "bad_request", message: "The session id is malformed." });
  });
});
