// Revocation and abuse limits against the real worker (wrangler dev), over real TCP with Node's
// WebSocket client: revoked sessions of every mesh pattern lose their sockets, auth and recovery
// limits per IP (and none pooled for requests without CF-Connecting-IP), socket caps, and
// oversized or flooding sockets closed.
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWorker, type RunningWorker } from "./support/worker-process";

const ADMIN_TOKEN = "e2e-admin-token-0123456789abcdef";
const SIGNING_KEY = "e2e-session-signing-key-0123456789abcdef";
const MESH_SECRET = "e2e-mesh-token-secret";

let worker: RunningWorker;
beforeAll(async () => {
  worker = await startWorker({
    vars: {
      ALLOW_OPEN_ACCESS: "0",
      ADMIN_TOKEN,
      SESSION_SIGNING_KEY: SIGNING_KEY,
      MESH_TOKEN_SECRET: MESH_SECRET,
      TENANT: "e2e",
      AUTH_RATE_LIMIT_PER_IP: "1000",
      AUTH_RATE_LIMIT_PER_KEY: "1000",
      AUTH_FAILURE_LIMIT_PER_MINUTE: "5",
      RECOVERY_RATE_LIMIT_PER_MINUTE: "3",
      RECOVERY_MAX_COUNT: "4",
      // About 1.7 s, so the expiry test can age a wrapper past it.
      RECOVERY_TTL_DAYS: "0.00002",
      PUSH_MAX_SOCKETS_PER_MESH: "3",
      PUSH_MAX_SOCKETS_PER_SESSION: "2",
      PUSH_MAX_MESSAGE_BYTES: "64",
      PUSH_MAX_MESSAGES_PER_MINUTE: "5",
    },
  });
});
afterAll(async () => {
  await worker?.stop();
});

const auth = (token: string) => ({ Authorization: `Bearer ${token}` });
const uniqueMesh = () => `e2e-${crypto.randomUUID()}`;
const uniqueIp = () => `198.51.100.${Math.floor(Math.random() * 250) + 1}-${crypto.randomUUID().slice(0, 8)}`;

async function createKey(meshPattern: string) {
  const res = await fetch(`${worker.base}/admin/keys`, {
    method: "POST",
    headers: { ...auth(ADMIN_TOKEN), "Content-Type": "application/json" },
    body: JSON.stringify({ name: "e2e", meshPattern, access: "full" }),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; key: string };
}

async function session(apiKey: string, body: Record<string, unknown> = {}) {
  const res = await fetch(`${worker.base}/auth/session`, {
    method: "POST",
    headers: { ...auth(apiKey), "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { token: string; sessionId: string };
}

interface Socket {
  ws: WebSocket;
  /** When the client received the server's close frame (left OPEN), ms since epoch. */
  closingAt(): number | null;
  closed: Promise<{ code: number; reason: string; at: number }>;
}

async function openSocket(mesh: string, token: string): Promise<Socket> {
  const ws = new WebSocket(`${worker.base.replace(/^http/, "ws")}/notify/${mesh}?access_token=${encodeURIComponent(token)}`);
  const closed = new Promise<{ code: number; reason: string; at: number }>((resolve) =>
    ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason, at: Date.now() })),
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("WebSocket did not open in 10 s")), 10_000);
    ws.addEventListener("open", () => (clearTimeout(timer), resolve()));
    ws.addEventListener("error", () => (clearTimeout(timer), reject(new Error("WebSocket failed to open"))));
  });
  // readyState leaves OPEN the moment the server's close frame is parsed; polled, bounded.
  let closingAt: number | null = null;
  const poll = setInterval(() => {
    if (closingAt === null && ws.readyState !== WebSocket.OPEN) closingAt = Date.now();
  }, 5);
  void closed.then(() => {
    if (closingAt === null) closingAt = Date.now();
    clearInterval(poll);
  });
  setTimeout(() => clearInterval(poll), 30_000).unref();
  return { ws, closingAt: () => closingAt, closed };
}

/**
 * A minimal WebSocket client on a raw TCP socket that reports the server's close frame (code and
 * reason) the moment its bytes arrive: Node's WebSocket only reports the code at its close event,
 * when the TCP connection ends.
 */
async function openRawSocket(mesh: string, token: string): Promise<{ closeFrame: Promise<{ code: number; reason: string; at: number }>; end(): void }> {
  const socket = connect(worker.port, "127.0.0.1");
  let buffer = Buffer.alloc(0);
  let upgraded = false;
  let onUpgrade: (ok: boolean) => void = () => undefined;
  const upgradedPromise = new Promise<boolean>((resolve) => (onUpgrade = resolve));
  let onClose: (frame: { code: number; reason: string; at: number }) => void = () => undefined;
  const closeFrame = new Promise<{ code: number; reason: string; at: number }>((resolve) => (onClose = resolve));
  socket.on("data", (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    if (!upgraded) {
      const end = buffer.indexOf("\r\n\r\n");
      if (end < 0) return;
      upgraded = true;
      onUpgrade(buffer.subarray(0, end).toString().startsWith("HTTP/1.1 101"));
      buffer = buffer.subarray(end + 4);
    }
    // Server frames are unmasked; only small ones are expected here.
    while (buffer.length >= 2) {
      const opcode = buffer[0]! & 0x0f;
      let length = buffer[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (buffer.length < 4) return;
        length = buffer.readUInt16BE(2);
        offset = 4;
      }
      if (buffer.length < offset + length) return;
      const payload = buffer.subarray(offset, offset + length);
      buffer = buffer.subarray(offset + length);
      if (opcode === 8) onClose({ code: payload.readUInt16BE(0), reason: payload.subarray(2).toString(), at: Date.now() });
    }
  });
  socket.write(
    `GET /sync/notify/${mesh}?access_token=${encodeURIComponent(token)} HTTP/1.1\r\nHost: 127.0.0.1:${worker.port}\r\n` +
      "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
  );
  const ok = await within(upgradedPromise, 10_000);
  if (ok !== true) {
    socket.destroy();
    throw new Error("raw WebSocket upgrade failed");
  }
  return { closeFrame, end: () => socket.destroy() };
}

/** An upgrade whose refusal we read (Node's fetch and WebSocket cannot show a refused upgrade's body). */
function refusedUpgrade(mesh: string, token: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${worker.base}/notify/${mesh}?access_token=${encodeURIComponent(token)}`, {
      headers: { Connection: "Upgrade", Upgrade: "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==" },
      timeout: 10_000,
    });
    req.on("upgrade", (_res, socket) => {
      socket.destroy();
      reject(new Error("the upgrade was accepted"));
    });
    req.on("response", (res) => {
      let text = "";
      res.on("data", (chunk: Buffer) => (text += chunk.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on("timeout", () => req.destroy(new Error("upgrade timed out")));
    req.on("error", reject);
    req.end();
  });
}

async function within<T>(promise: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), ms)));
  const result = await Promise.race([promise, timeout]);
  clearTimeout(timer);
  return result;
}

describe("revocation reaches every socket of the session, over TCP", () => {
  it("closes exact, prefix and '*' sessions' sockets, and a revoked key's, with 4403", async () => {
    const prefix = `e2e-p-${crypto.randomUUID()}-`;
    const exactMesh = uniqueMesh();
    const exact = await session((await createKey(exactMesh)).key);
    const prefixSession = await session((await createKey(`${prefix}*`)).key);
    const star = await session((await createKey("*")).key);
    const keyMeshPrefix = `e2e-k-${crypto.randomUUID()}-`;
    const revokedKey = await createKey(`${keyMeshPrefix}*`);
    const ofKey = await session(revokedKey.key);

    const sockets = {
      exact: [await openSocket(exactMesh, exact.token)],
      prefix: [await openSocket(`${prefix}a`, prefixSession.token), await openSocket(`${prefix}b`, prefixSession.token)],
      star: [await openSocket(uniqueMesh(), star.token), await openSocket(uniqueMesh(), star.token)],
      key: [await openSocket(`${keyMeshPrefix}a`, ofKey.token), await openSocket(`${keyMeshPrefix}b`, ofKey.token)],
    };
    // Raw TCP clients beside them read the close frame's code itself as it arrives.
    const raw = {
      exact: await openRawSocket(exactMesh, exact.token),
      prefix: await openRawSocket(`${prefix}c`, prefixSession.token),
      star: await openRawSocket(uniqueMesh(), star.token),
      key: await openRawSocket(`${keyMeshPrefix}c`, ofKey.token),
    };
    // A bystander on a mesh the '*' session also uses stays connected.
    const sharedMesh = uniqueMesh();
    sockets.star.push(await openSocket(sharedMesh, star.token));
    const bystander = await openSocket(sharedMesh, (await session((await createKey(sharedMesh)).key)).token);

    const revokedAt: Record<keyof typeof sockets, number> = { exact: 0, prefix: 0, star: 0, key: 0 };
    revokedAt.exact = Date.now();
    expect((await fetch(`${worker.base}/auth/session`, { method: "DELETE", headers: auth(exact.token) })).status).toBe(204);
    revokedAt.prefix = Date.now();
    expect((await fetch(`${worker.base}/admin/sessions/${prefixSession.sessionId}`, { method: "DELETE", headers: auth(ADMIN_TOKEN) })).status).toBe(200);
    revokedAt.star = Date.now();
    expect((await fetch(`${worker.base}/auth/session`, { method: "DELETE", headers: auth(star.token) })).status).toBe(204);
    revokedAt.key = Date.now();
    expect((await fetch(`${worker.base}/admin/keys/${revokedKey.id}`, { method: "DELETE", headers: auth(ADMIN_TOKEN) })).status).toBe(200);

    const figures: Record<string, { closeFrameMs: number[]; closeEventMs: number[]; rawCloseFrameMs?: number }> = {};
    const rawFrames: Record<string, number> = {};
    for (const [kind, client] of Object.entries(raw) as [keyof typeof sockets, Awaited<ReturnType<typeof openRawSocket>>][]) {
      const frame = await within(client.closeFrame, 5_000);
      expect(frame).not.toBe("timeout");
      if (frame === "timeout") continue;
      // Close code 4403, read from the wire on the client side, within a second of the revocation.
      expect(frame).toMatchObject({ code: 4403, reason: "Session revoked." });
      rawFrames[kind] = frame.at - revokedAt[kind];
      expect(rawFrames[kind]).toBeLessThan(1_000);
      client.end();
    }
    for (const [kind, list] of Object.entries(sockets) as [keyof typeof sockets, Socket[]][]) {
      figures[kind] = { closeFrameMs: [], closeEventMs: [] };
      for (const socket of list) {
        const close = await within(socket.closed, 20_000);
        expect(close).not.toBe("timeout");
        if (close === "timeout") continue;
        expect(close.code).toBe(4403);
        expect(close.reason).toBe("Session revoked.");
        const frameMs = socket.closingAt()! - revokedAt[kind];
        figures[kind].closeFrameMs.push(frameMs);
        figures[kind].closeEventMs.push(close.at - revokedAt[kind]);
        // The close frame (code 4403) reaches the client within a second of the revocation.
        expect(frameMs).toBeLessThan(1_000);
      }
    }
    for (const kind of Object.keys(rawFrames)) figures[kind]!.rawCloseFrameMs = rawFrames[kind];
    console.log(JSON.stringify({ revocationCloseFigures: figures }));
    expect(bystander.ws.readyState).toBe(WebSocket.OPEN);
    bystander.ws.close(1000, "done");
  });
});

describe("auth limits over HTTP", () => {
  it("answers failed IO credentials 401 per IP up to the limit, then 429; other IPs are unaffected", async () => {
    const mesh = uniqueMesh();
    const ip = uniqueIp();
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await fetch(`${worker.base}/io/${mesh}/health`, { headers: { ...auth("f".repeat(64)), "CF-Connecting-IP": ip } });
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429, 429]);
    const other = await fetch(`${worker.base}/io/${mesh}/health`, { headers: { ...auth("f".repeat(64)), "CF-Connecting-IP": uniqueIp() } });
    expect(other.status).toBe(401);
  });
});

describe("a request without CF-Connecting-IP", () => {
  // Through Cloudflare's edge, and in workerd under wrangler dev, CF-Connecting-IP is always set:
  // a request sent without it (even with an empty one) is counted under its real peer address,
  // never in a bucket shared by every caller. (A request that truly lacks it, e.g. over a
  // service binding, is in no per-IP bucket at all: test/worker/auth-rate-limit.test.ts.)
  it("is limited under its own address: its 40 bad credentials lock out neither other addresses nor its good credentials", async () => {
    const mesh = uniqueMesh();
    const mints = new Set<number>();
    const ios: number[] = [];
    for (let i = 0; i < 40; i++) {
      const mint = await fetch(`${worker.base}/auth/session`, { method: "POST", headers: auth("mbk_not_a_key") });
      mints.add(mint.status);
      await mint.arrayBuffer();
      const io = await fetch(`${worker.base}/io/${mesh}/health`, { headers: auth("e".repeat(64)) });
      ios.push(io.status);
      await io.arrayBuffer();
    }
    expect([...mints]).toEqual([401]);
    expect(ios.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(new Set(ios.slice(5))).toEqual(new Set([429]));
    const elsewhere = await fetch(`${worker.base}/io/${mesh}/health`, { headers: { ...auth("e".repeat(64)), "CF-Connecting-IP": uniqueIp() } });
    expect(elsewhere.status).toBe(401);
    const key = await createKey(mesh);
    const minted = await session(key.key);
    expect((await fetch(`${worker.base}/io/${mesh}/health`, { headers: auth(minted.token) })).status).toBe(200);
  });
});

const newLocator = () => Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
const putWrapper = (locator: string, body: string, ip = uniqueIp()) =>
  fetch(`${worker.base}/recovery/${locator}`, { method: "PUT", body, headers: { "CF-Connecting-IP": ip } });

describe("recovery wrappers", () => {
  it("are rate-limited per IP, held to the tenant quota, counted in admin stats, and purged after RECOVERY_TTL_DAYS", async () => {
    const ip = uniqueIp();
    const perIp = [];
    for (let i = 0; i < 4; i++) perIp.push((await putWrapper(newLocator(), `w${i}`, ip)).status);
    expect(perIp).toEqual([201, 201, 201, 429]);

    const locator = newLocator();
    expect((await putWrapper(locator, "fourth")).status).toBe(201);
    const over = await putWrapper(newLocator(), "fifth");
    expect(over.status).toBe(429);
    expect(await over.json()).toEqual({
      error: "rate_limited",
      message: "This server holds its limit of 4 recovery wrappers (RECOVERY_MAX_COUNT); none can be added now.",
      limit: 4,
    });
    const stats = await fetch(`${worker.base}/admin/recovery`, { headers: auth(ADMIN_TOKEN) });
    expect(await stats.json()).toEqual({ count: 4, bytes: 2 + 2 + 2 + 6, maxCount: 4, maxBytes: 1024 ** 3, ttlDays: 0.00002 });

    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const run = await fetch(`${worker.base}/admin/maintenance`, { method: "POST", headers: auth(ADMIN_TOKEN) });
    expect(run.status).toBe(200);
    expect(await run.json()).toMatchObject({ recoveryWrappersPurged: 4, errors: [] });
    expect((await fetch(`${worker.base}/recovery/${locator}`)).status).toBe(404);
    expect((await putWrapper(newLocator(), "room again")).status).toBe(201);
  });
});

describe("push socket limits", () => {
  it("refuses a session's third socket on a mesh and a mesh's fourth socket with 429 and a clear message", async () => {
    const mesh = uniqueMesh();
    const key = await createKey(mesh);
    const first = await session(key.key);
    const second = await session(key.key);
    const held = [await openSocket(mesh, first.token), await openSocket(mesh, first.token)];
    expect(await refusedUpgrade(mesh, first.token)).toEqual({ status: 429, body: {
      error: "rate_limited",
      message: "This session already has 2 open push sockets on this mesh (PUSH_MAX_SOCKETS_PER_SESSION); close one first.",
    } });
    held.push(await openSocket(mesh, second.token));
    expect(await refusedUpgrade(mesh, second.token)).toEqual({ status: 429, body: {
      error: "rate_limited",
      message: "This mesh already has 3 open push sockets (PUSH_MAX_SOCKETS_PER_MESH); retry later.",
    } });
    for (const socket of held) socket.ws.close(1000, "done");
  });

  it("closes a socket that sends an oversized frame with 1009 and one that floods with 1008, and keeps a pinging one", async () => {
    const mesh = uniqueMesh();
    const key = await createKey(mesh);
    const big = await openSocket(mesh, (await session(key.key)).token);
    const flood = await openSocket(mesh, (await session(key.key)).token);
    const pinger = await openSocket(mesh, (await session(key.key)).token);
    big.ws.send("x".repeat(65));
    for (let i = 0; i < 8; i++) flood.ws.send(`hello ${i}`);
    const pongs: string[] = [];
    pinger.ws.addEventListener("message", (e) => pongs.push(String(e.data)));
    for (let i = 0; i < 10; i++) pinger.ws.send("ping");
    expect(await within(big.closed, 20_000)).toMatchObject({ code: 1009, reason: 'Message too big (limit 64 bytes); clients only send "ping".' });
    expect(await within(flood.closed, 20_000)).toMatchObject({ code: 1008, reason: "Too many messages (limit 5 a minute)." });
    const deadline = Date.now() + 5_000;
    while (pongs.length < 10 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(pongs).toEqual(Array.from({ length: 10 }, () => "pong"));
    expect(pinger.ws.readyState).toBe(WebSocket.OPEN);
    pinger.ws.close(1000, "done");
  });
});
