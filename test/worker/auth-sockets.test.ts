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

describe("revocation of sessions scoped to '*' or a prefix", () => {
  it("closes a '*' session's sockets on every mesh it holds them on with 4403", async () => {
    const target = authEnv();
    const key = await newKey("*");
    const star = await mintSession(target, key.key);
    const meshes = [uniqueMesh(), uniqueMesh(), uniqueMesh()];
    const sockets = [];
    for (const mesh of meshes) sockets.push(await openSocket(target, mesh, star.token));
    await revokeSession(env, star.sessionId);
    for (const socket of sockets) expect(await closeOf(socket.closed)).toMatchObject({ code: 4403 });
  });

  it("closes a prefix session's sockets on each of its meshes when its key is revoked", async () => {
    const prefix = `p-${crypto.randomUUID()}-`;
    const target = authEnv();
    const key = await newKey(`${prefix}*`);
    const session = await mintSession(target, key.key);
    const a = await openSocket(target, `${prefix}a`, session.token);
    const b = await openSocket(target, `${prefix}b`, session.token);
    expect(await revokeApiKey(env, key.id)).toMatchObject({ sessionsRevoked: 1 });
    expect(await closeOf(a.closed)).toMatchObject({ code: 4403 });
    expect(await closeOf(b.closed)).toMatchObject({ code: 4403 });
  });

  it("refuses with 401 an upgrade that reaches a hub after the hub was told of the revocation", async () => {
    const mesh = uniqueMesh();
    const target = authEnv();
    const { session } = await sessionFor(target, mesh);
    // The hub hears of the revocation before this upgrade arrives (D1 still says live here).
    await env.MESH_HUB.get(env.MESH_HUB.idFromName(mesh)).closeSessions([session.sessionId], 4403);
    const res = await call(target, `/notify/${mesh}?access_token=${encodeURIComponent(session.token)}`, {
      headers: { Upgrade: "websocket" },
    });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: "unauthorized", message: "The session has been revoked." });
  });
});

// The caps and message limits are the hub's own vars (its env is the test bindings here), so
// test/e2e/revocation-limits.test.ts drives them with small values against wrangler dev.
describe("push socket limits", () => {
  it("answers 'ping' past PUSH_MAX_MESSAGES_PER_MINUTE (default 60) without counting it", async () => {
    const mesh = uniqueMesh();
    const target = authEnv();
    const { session } = await sessionFor(target, mesh);
    const socket = await openSocket(target, mesh, session.token);
    const pongs: string[] = [];
    socket.ws.addEventListener("message", (event) => pongs.push(String(event.data)));
    for (let i = 0; i < 70; i++) socket.ws.send("ping");
    const deadline = Date.now() + 4_000;
    while (pongs.length < 70 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(pongs).toEqual(Array.from({ length: 70 }, () => "pong"));
    expect(await closeOf(socket.closed, 100)).toBeNull();
    socket.ws.close(1000, "done");
  });
});
