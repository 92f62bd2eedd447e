// Identity-provider tokens against the real worker under `wrangler dev`, with a real JWKS server
// (Node http on 127.0.0.1 serving keys generated with jose, rotated mid-test): mesh access from
// the claim and the grants table, readonly, each failed check by name, the session exchange, and
// a socket closed at the token's exp. Then the app-backend recipe: a backend holding a `*` API
// key mints per-user sessions that a browser-like Node client uses. Last, the `grants` CLI group
// (scripts/cli/grants.mjs) against the same worker.
import { execFile } from "node:child_process";
import { createServer, type Server } from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { SignJWT, exportJWK, generateKeyPair, type JWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, startWorker, type RunningWorker } from "./support/worker-process";

const ADMIN_TOKEN = "e2e-idp-admin-token-0123456789abcdef";
const SIGNING_KEY = "e2e-idp-session-signing-key-0123456789abcdef";
const AUDIENCE = "https://sync.e2e.test";

let worker: RunningWorker;
let jwksServer: Server;
let issuer: string;
let published: JWK[] = [];
let jwksFetches = 0;

interface SigningKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function newKey(kid: string, alg = "ES256"): Promise<SigningKey> {
  const pair = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey: pair.privateKey as CryptoKey, jwk: { ...(await exportJWK(pair.publicKey)), kid, alg, use: "sig" } };
}

let first: SigningKey;

beforeAll(async () => {
  first = await newKey("key-1");
  published = [first.jwk];
  const port = await freePort();
  issuer = `http://127.0.0.1:${port}/`;
  jwksServer = createServer((req, res) => {
    if (req.url !== "/.well-known/jwks.json") {
      res.writeHead(404).end();
      return;
    }
    jwksFetches++;
    res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ keys: published }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(port, "127.0.0.1", resolve));
  worker = await startWorker({
    vars: {
      ALLOW_OPEN_ACCESS: "0",
      ADMIN_TOKEN,
      SESSION_SIGNING_KEY: SIGNING_KEY,
      AUTH_JWKS_URL: `${issuer}.well-known/jwks.json`,
      AUTH_ISSUER: issuer,
      AUTH_AUDIENCE: AUDIENCE,
      // No cooldown, so the rotation below refetches at once; the default (30 s) stays in tenants.
      AUTH_JWKS_COOLDOWN_MS: "0",
      REVOCATION_CACHE_MS: "0",
      AUTH_RATE_LIMIT_PER_MINUTE: "1000",
      TENANT: "e2e-idp",
    },
  });
});
afterAll(async () => {
  await worker?.stop();
  await new Promise<void>((resolve) => (jwksServer ? jwksServer.close(() => resolve()) : resolve()));
});

const auth = (token: string) => ({ Authorization: `Bearer ${token}` });
const uniqueMesh = () => `e2e-${crypto.randomUUID()}`;
const nowSeconds = () => Math.floor(Date.now() / 1000);

async function idToken(
  claims: Record<string, unknown>,
  options: { key?: SigningKey; kid?: string; iss?: string; aud?: string; exp?: number } = {},
): Promise<string> {
  const key = options.key ?? first;
  return new SignJWT({ sub: `user-${crypto.randomUUID()}`, ...claims })
    .setProtectedHeader({ alg: key.alg, kid: options.kid ?? key.kid, typ: "JWT" })
    .setIssuer(options.iss ?? issuer)
    .setAudience(options.aud ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(options.exp ?? nowSeconds() + 600)
    .sign(key.privateKey);
}

const health = (mesh: string, token: string) => fetch(`${worker.base}/io/${mesh}/health`, { headers: auth(token) });
const put = (mesh: string, token: string, path = "/App/notes/a.bin") =>
  fetch(`${worker.base}/io/${mesh}/file?path=${encodeURIComponent(path)}`, { method: "PUT", headers: auth(token), body: "sealed bytes" });
const admin = (path: string, init: RequestInit = {}) =>
  fetch(`${worker.base}${path}`, { ...init, headers: { ...auth(ADMIN_TOKEN), "Content-Type": "application/json" } });

async function within<T>(promise: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), ms)));
  const result = await Promise.race([promise, timeout]);
  clearTimeout(timer);
  return result;
}

function openSocket(mesh: string, token: string) {
  const ws = new WebSocket(`${worker.base.replace(/^http/, "ws")}/notify/${mesh}?access_token=${encodeURIComponent(token)}`);
  const opened = new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => resolve());
    ws.addEventListener("error", () => reject(new Error("WebSocket failed to open")));
  });
  const closed = new Promise<{ code: number }>((resolve) => ws.addEventListener("close", (e) => resolve({ code: e.code })));
  return { ws, opened, closed };
}

describe("identity-provider tokens against the real worker and a real JWKS server", () => {
  it("reports the configured modes on /sync/health", async () => {
    const res = await fetch(`${worker.base}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, service: "meshbox", auth: ["session", "idp"] });
  });

  it("opens the meshes of the claim, exact and prefix*, and refuses writes to :readonly ones", async () => {
    const mesh = uniqueMesh();
    const token = await idToken({ meshes: [mesh, `${mesh}-team-*`, `${mesh}-shared:readonly`] });
    expect((await health(mesh, token)).status).toBe(200);
    expect((await put(mesh, token)).status).toBe(201);
    expect((await put(`${mesh}-team-7`, token)).status).toBe(201);
    expect((await health(`${mesh}-shared`, token)).status).toBe(200);
    const readonly = await put(`${mesh}-shared`, token);
    expect(readonly.status).toBe(403);
    expect(await readonly.json()).toEqual({ error: "forbidden", message: "This session is read-only." });
    const other = await health(uniqueMesh(), token);
    expect(other.status).toBe(403);
  });

  it("opens the meshes of the grants table once an admin adds a grant, and closes them on revoke", async () => {
    const sub = `auth0|${crypto.randomUUID()}`;
    const mesh = uniqueMesh();
    const token = await idToken({ sub });
    expect((await health(mesh, token)).status).toBe(403);
    const added = await admin("/admin/grants", { method: "POST", body: JSON.stringify({ subject: sub, meshPattern: mesh, access: "readonly" }) });
    expect(added.status).toBe(201);
    const grant = (await added.json()) as { id: string };
    expect((await health(mesh, token)).status).toBe(200);
    expect((await put(mesh, token)).status).toBe(403);
    expect((await admin(`/admin/grants/${grant.id}`, { method: "DELETE" })).status).toBe(200);
    expect((await health(mesh, token)).status).toBe(403);
  });

  it("answers 401 naming the failed check: issuer, audience, algorithm, expired", async () => {
    const mesh = uniqueMesh();
    const rs384 = await newKey("key-1", "RS384");
    const none = `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${Buffer.from(
      JSON.stringify({ iss: issuer, aud: AUDIENCE, sub: "u", meshes: [mesh], exp: nowSeconds() + 600 }),
    ).toString("base64url")}.`;
    const cases: [string, string][] = [
      [await idToken({ meshes: [mesh] }, { iss: "https://someone-else.example/" }), "The identity token's issuer (iss) is not AUTH_ISSUER."],
      [await idToken({ meshes: [mesh] }, { aud: "another-app" }), "The identity token's audience (aud) is not AUTH_AUDIENCE."],
      [await idToken({ meshes: [mesh] }, { key: rs384 }), "The identity token's algorithm (alg) is not allowed (AUTH_ALGORITHMS)."],
      [none, "The identity token's algorithm (alg) is not allowed (AUTH_ALGORITHMS)."],
      [await idToken({ meshes: [mesh] }, { exp: nowSeconds() - 120 }), "The identity token has expired (exp)."],
    ];
    for (const [token, message] of cases) {
      const res = await health(mesh, token);
      expect(res.status, message).toBe(401);
      const text = await res.text();
      expect(JSON.parse(text)).toEqual({ error: "unauthorized", message });
      expect(text).not.toContain(token.split(".")[1]);
    }
    expect(worker.output()).not.toContain(cases[0]![0].split(".")[2]);
  });

  it("accepts a key published after rotation (one refetch) and refuses a kid the JWKS never had", async () => {
    const mesh = uniqueMesh();
    expect((await health(mesh, await idToken({ meshes: [mesh] }))).status).toBe(200);
    const second = await newKey("key-2", "EdDSA");
    published = [second.jwk];
    const before = jwksFetches;
    const rotated = await idToken({ meshes: [mesh] }, { key: second });
    expect((await health(mesh, rotated)).status).toBe(200);
    expect(jwksFetches).toBe(before + 1);
    expect((await health(mesh, rotated)).status).toBe(200);
    expect(jwksFetches).toBe(before + 1);

    const unknown = await idToken({ meshes: [mesh] }, { key: second, kid: "key-never-published" });
    const res = await health(mesh, unknown);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({
      error: "unauthorized",
      message: "The identity token is signed with an unknown key (kid not in the provider's JWKS).",
    });
    // The retired key is gone from the set: its tokens are refused the same way.
    const retired = await health(mesh, await idToken({ meshes: [mesh] }));
    expect(retired.status).toBe(401);
    published = [first.jwk, second.jwk];
  });

  it("exchanges a provider token for a narrower, revocable meshbox session", async () => {
    const mesh = uniqueMesh();
    const token = await idToken({ meshes: [mesh, `${mesh}-other`] });
    const missing = await fetch(`${worker.base}/auth/session`, { method: "POST", headers: auth(token) });
    expect(missing.status).toBe(400);
    const wider = await fetch(`${worker.base}/auth/session`, {
      method: "POST",
      headers: { ...auth(token), "Content-Type": "application/json" },
      body: JSON.stringify({ mesh: "*" }),
    });
    expect(wider.status).toBe(403);
    const res = await fetch(`${worker.base}/auth/session`, {
      method: "POST",
      headers: { ...auth(token), "Content-Type": "application/json" },
      body: JSON.stringify({ mesh, scope: "readonly", ttlSeconds: 300 }),
    });
    expect(res.status).toBe(201);
    const session = (await res.json()) as { token: string; sessionId: string; mesh: string; scope: string; tokenType: string };
    expect(session).toMatchObject({ tokenType: "Bearer", mesh, scope: "readonly" });
    expect((await health(mesh, session.token)).status).toBe(200);
    expect((await put(mesh, session.token)).status).toBe(403);
    expect((await health(`${mesh}-other`, session.token)).status).toBe(403);

    const revoked = await fetch(`${worker.base}/auth/session`, { method: "DELETE", headers: auth(session.token) });
    expect(revoked.status).toBe(204);
    const after = await health(mesh, session.token);
    expect(after.status).toBe(401);
    expect(await after.json()).toEqual({ error: "unauthorized", message: "The session has been revoked." });
    // The provider token itself still works: revoking the session only ends the session.
    expect((await health(mesh, token)).status).toBe(200);
  });

  it("closes a socket opened with a provider token at the token's exp with 4401", async () => {
    const mesh = uniqueMesh();
    const exp = nowSeconds() + 3;
    const socket = openSocket(mesh, await idToken({ meshes: [mesh] }, { exp }));
    await socket.opened;
    const close = await within(socket.closed, 30_000);
    expect(close).toEqual({ code: 4401 });
    expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000);
  });
});

describe("the app-backend recipe: a backend with a `*` key mints per-user sessions", () => {
  /** The app's backend: holds the API key, never gives it out, mints one session per sign-in. */
  function appBackend(apiKey: string) {
    return {
      async signIn(user: { id: string; mesh: string; readonly: boolean }) {
        const res = await fetch(`${worker.base}/auth/session`, {
          method: "POST",
          headers: { ...auth(apiKey), "Content-Type": "application/json" },
          body: JSON.stringify({ mesh: user.mesh, scope: user.readonly ? "readonly" : "full", subject: user.id, ttlSeconds: 900 }),
        });
        expect(res.status).toBe(201);
        return (await res.json()) as { token: string; sessionId: string; expiresAt: string; mesh: string; scope: string };
      },
    };
  }

  it("gives each signed-in user a session for their own mesh only, readonly where it should be", async () => {
    const created = await admin("/admin/keys", { method: "POST", body: JSON.stringify({ name: "app backend", meshPattern: "*" }) });
    expect(created.status).toBe(201);
    const backend = appBackend(((await created.json()) as { key: string }).key);
    const alice = { id: "user-alice", mesh: uniqueMesh(), readonly: false };
    const viewer = { id: "user-viewer", mesh: alice.mesh, readonly: true };
    const bob = { id: "user-bob", mesh: uniqueMesh(), readonly: false };

    // The browser (this Node client) only ever sees its session token.
    const aliceSession = await backend.signIn(alice);
    expect(aliceSession).toMatchObject({ mesh: alice.mesh, scope: "full" });
    expect((await put(alice.mesh, aliceSession.token)).status).toBe(201);
    const read = await fetch(`${worker.base}/io/${alice.mesh}/file?path=${encodeURIComponent("/App/notes/a.bin")}`, { headers: auth(aliceSession.token) });
    expect(read.status).toBe(200);
    expect(await read.text()).toBe("sealed bytes");
    expect((await health(bob.mesh, aliceSession.token)).status).toBe(403);

    const viewerSession = await backend.signIn(viewer);
    expect(viewerSession.scope).toBe("readonly");
    expect((await health(alice.mesh, viewerSession.token)).status).toBe(200);
    expect((await put(alice.mesh, viewerSession.token, "/App/notes/b.bin")).status).toBe(403);

    const bobSession = await backend.signIn(bob);
    expect((await put(bob.mesh, bobSession.token)).status).toBe(201);
    expect((await health(alice.mesh, bobSession.token)).status).toBe(403);

    // The push socket works with the same token, and the admin can see and revoke the user's session.
    const socket = openSocket(alice.mesh, aliceSession.token);
    await socket.opened;
    socket.ws.close(1000);
    const listed = (await (await admin(`/admin/sessions?mesh=${alice.mesh}`)).json()) as { sessions: { jti: string; subject: string }[] };
    expect(listed.sessions.map((s) => s.subject).sort()).toEqual(["user-alice", "user-viewer"]);
    expect((await admin(`/admin/sessions/${aliceSession.sessionId}`, { method: "DELETE" })).status).toBe(200);
    expect((await health(alice.mesh, aliceSession.token)).status).toBe(401);
  });
});

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Runs the grants module's `run` in a fresh Node process, as the dispatcher would. */
function grantsCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = `import { run } from ${JSON.stringify(path.join(root, "scripts/cli/grants.mjs"))};
process.exitCode = await run(process.argv.slice(1), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, isTTY: false });`;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--input-type=module", "-e", script, ...args],
      { cwd: root, env: { PATH: process.env.PATH ?? "", MESHBOX_URL: worker.base, MESHBOX_ADMIN_TOKEN: ADMIN_TOKEN, ...env }, timeout: 20_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe("meshbox grants (CLI)", () => {
  it("adds, lists and revokes a grant, and the provider token follows it", async () => {
    const sub = `clerk_user_${crypto.randomUUID()}`;
    const mesh = uniqueMesh();
    const token = await idToken({ sub });
    const added = await grantsCli(["add", "--sub", sub, "--mesh", mesh, "--access", "readonly", "--json"]);
    expect(added.code).toBe(0);
    const grant = JSON.parse(added.stdout) as { id: string; subject: string; meshPattern: string; access: string };
    expect(grant).toMatchObject({ subject: sub, meshPattern: mesh, access: "readonly" });
    expect((await health(mesh, token)).status).toBe(200);

    const listed = await grantsCli(["list", "--sub", sub]);
    expect(listed.code).toBe(0);
    const lines = listed.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^id\s+subject\s+meshPattern\s+access\s+createdAt$/);
    expect(lines.slice(2).map((l) => l.split(/\s+/).slice(0, 4))).toEqual([[grant.id, sub, mesh, "readonly"]]);

    const revoked = await grantsCli(["revoke", grant.id]);
    expect(revoked).toMatchObject({ code: 0, stdout: `revoked ${grant.id} (${sub} → ${mesh})\n` });
    expect((await health(mesh, token)).status).toBe(403);
    expect((await grantsCli(["list", "--sub", sub])).stdout).toBe("(none)\n");
  });

  it("exits 2 with the usage for bad usage and 1 with the server's message for a refusal", async () => {
    // A mistake in one command shows that command's usage line; anything else, the group's.
    for (const [args, shown] of [
      [[], "add"],
      [["frobnicate"], "add"],
      [["add", "--mesh", "m"], "add"],
      [["add", "--sub", "s", "--mesh", "m", "--access", "write"], "add"],
      [["list", "--bogus"], "list"],
      [["list", "extra"], "list"],
      [["revoke"], "revoke"],
    ] as const) {
      const res = await grantsCli([...args]);
      expect(res.code, args.join(" ")).toBe(2);
      expect(res.stderr).toContain(`usage: meshbox grants ${shown}`);
    }
    const unknown = await grantsCli(["revoke", "grt_0123456789abcdef"]);
    expect(unknown).toMatchObject({ code: 1, stderr: "meshbox: 404 not_found: No grant has the id grt_0123456789abcdef.\n" });
    const wrongToken = await grantsCli(["list"], { MESHBOX_ADMIN_TOKEN: "wrong" });
    expect(wrongToken.code).toBe(1);
    expect(wrongToken.stderr).toMatch(/^meshbox: 401 unauthorized: /);
  });
});
