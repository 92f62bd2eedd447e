// Revocation reaches open WebSockets at once: the session's mesh hub closes them with 4403.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Env } from "../../worker/env";
import { revokeApiKey } from "../../worker/identity/api-keys";
import { revokeSession } from "../../worker/identity/sessions";
import { authEnv, bearer, call, mintSession, newKey, sessionFor, uniqueMesh } from "./auth-fixtures";

async function openSocket(target: Env, mesh: string, token: string) {
  const res = await call(target, `/notify/${mesh}?access_token=${encodeURIComponent(token)}`, {
    headers: { Upgrade: "websocket" },
  });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.addEventListener("close", (event) => resolve({ code: event.code, reason: event.reason }));
  });
  ws.accept();
  return { ws, closed };
}

/** Waits for the close event, bounded: a socket that stays open fails the test. */
async function closeOf(closed: Promise<{ code: number; reason: string }>, ms = 5_000) {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)));
  const result = await Promise.race([closed, timeout]);
  if (timer !== null) clearTimeout(timer);
  return result;
}

describe("GET /sync/notify/<mesh> with a session token", () => {
  it("opens with the token in access_token and closes with 4403 when the session is revoked", async () => {
    const mesh = uniqueMesh();
    const target = authEnv();
    const { session } = await sessionFor(target, mesh);
    const { closed } = await openSocket(target, mesh, session.token);
    await revokeSession(env, session.sessionId);
    expect(await closeOf(closed)).toMatchObject({ code: 4403 });
  });

  it("closes with 4403 when the session revokes itself over DELETE /sync/auth/session", async () => {
    const mesh = uniqueMesh();
    const target = authEnv();
    const { session } = await sessionFor(target, mesh);
    const { closed } = await openSocket(target, mesh, session.token);
    const res = await call(target, "/auth/session", { method: "DELETE", headers: bearer(session.token) });
    expect(res.status).toBe(204);
    expect(await closeOf(closed)).toMatchObject({ code: 4403 });
  });

  it("closes every socket of a revoked API key's sessions, across meshes", async () => {
    const prefix = `k-${crypto.randomUUID()}-`;
    const target = authEnv();
    const key = await newKey(`${prefix}*`);
    const onA = await mintSession(target, key.key, { mesh: `${prefix}a` });
    const onB = await mintSession(target, key.key, { mesh: `${prefix}b` });
    const { session: bystander } = await sessionFor(target, `${prefix}a`);
    const a = await openSocket(target, `${prefix}a`, onA.token);
    const b = await openSocket(target, `${prefix}b`, onB.token);
    const c = await openSocket(target, `${prefix}a`, bystander.token);
    expect(await revokeApiKey(env, key.id)).toMatchObject({ sessionsRevoked: 2 });
    expect(await closeOf(a.closed)).toMatchObject({ code: 4403 });
    expect(await closeOf(b.closed)).toMatchObject({ code: 4403 });
    // Another key's session on the same mesh stays open.
    expect(await closeOf(c.closed, 200)).toBeNull();
    c.ws.close(1000, "done");
  });

  it("closes a socket with 4401 once its session expires", async () => {
    const mesh = uniqueMesh();
    const target = authEnv();
    const { session } = await sessionFor(target, mesh, "full", { ttlSeconds: 1 });
    const { closed } = await openSocket(target, mesh, session.token);
    expect(await closeOf(closed, 5_000)).toMatchObject({ code: 4401 });
  });

  it("refuses the upgrade of a revoked session with 401", async () => {
    const mesh = uniqueMesh();
    const target = authEnv();
    const { session } = await sessionFor(target, mesh);
    await revokeSession(env, session.sessionId);
    const res = await call(target, `/notify/${mesh}?access_token=${encodeURIComponent(session.token)}`, {
      headers: { Upgrade: "websocket" },
    });
    expect(res.status).toBe(401);
  });
});
