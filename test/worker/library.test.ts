// createMeshbox (worker/meshbox.ts): the options an embedding app passes win over vars, reach
// every route, and stay with their own instance.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createMeshbox, HttpError, type AuditEvent, type Meshbox, type MeshboxOptions } from "../../worker/meshbox";
import { readConfig } from "../../worker/lib/config";
import type { Env } from "../../worker/env";

const quiet = { ...env, LOG_REQUESTS: "0" } as Env;
const newMesh = () => `lib-${crypto.randomUUID()}`;

async function call(meshbox: Meshbox, url: string, init: RequestInit = {}, target: Env = quiet): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await meshbox.fetch(new Request(`http://app.test${url}`, init), target, ctx);
  const body = res.status === 204 ? null : await res.arrayBuffer();
  await waitOnExecutionContext(ctx);
  return new Response(body, { status: res.status, headers: res.headers });
}

/** An app hook: `X-App-Token: rw-<name>` is full access, `ro-<name>` read-only, else refused. */
const appAuthorize: MeshboxOptions["authorize"] = (request) => {
  const token = request.headers.get("X-App-Token") ?? "";
  if (token.startsWith("rw-")) return { access: "full", subject: token.slice(3) };
  if (token.startsWith("ro-")) return { access: "readonly", subject: token.slice(3) };
  if (token === "banned") throw new HttpError("forbidden", "This account is suspended.");
  return null;
};

describe("createMeshbox", () => {
  it("serves every route under its mount prefix and nothing under the default one", async () => {
    const meshbox = createMeshbox({ mountPrefix: "/api/sync/" });
    const health = await call(meshbox, "/api/sync/health");
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true, service: "meshbox", auth: ["open"] });
    const put = await call(meshbox, `/api/sync/io/${newMesh()}/file?path=/App/a.bin`, { method: "PUT", body: "abc" });
    expect(put.status).toBe(201);
    const outside = await call(meshbox, "/sync/health");
    expect(outside.status).toBe(404);
    expect(await outside.json()).toEqual({ error: "not_found", message: "No such route." });
  });

  it("mounts at the root with mountPrefix \"/\"", async () => {
    const res = await call(createMeshbox({ mountPrefix: "/" }), "/health");
    expect(res.status).toBe(200);
  });

  it("applies its limits over the vars' and leaves the env's own config untouched", async () => {
    const meshbox = createMeshbox({ limits: { other: 4 } });
    const res = await call(meshbox, `/sync/io/${newMesh()}/file?path=/App/big.bin`, { method: "PUT", body: "12345" });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({
      error: "payload_too_large",
      message: "The file is larger than the limit of 4 bytes.",
      limit: 4,
    });
    expect(readConfig(quiet).limits.other).toBe(8 * 1024 * 1024);
    expect((await call(createMeshbox(), `/sync/io/${newMesh()}/file?path=/App/big.bin`, { method: "PUT", body: "12345" })).status).toBe(201);
  });

  it("refuses a limit that is not a non-negative number when it is created", () => {
    expect(() => createMeshbox({ limits: { change: -1 } })).toThrow(
      new TypeError("createMeshbox: limits.change must be a non-negative number of bytes, not -1"),
    );
  });

  it("answers CORS for its own origin allowlist", async () => {
    const meshbox = createMeshbox({ cors: { origins: ["https://app.example"] } });
    const allowed = await call(meshbox, "/sync/health", { headers: { Origin: "https://app.example" } });
    expect(allowed.headers.get("Access-Control-Allow-Origin")).toBe("https://app.example");
    expect(allowed.headers.get("Vary")).toBe("Origin");
    const other = await call(meshbox, "/sync/health", { headers: { Origin: "https://evil.example" } });
    expect(other.headers.get("Access-Control-Allow-Origin")).toBeNull();
  });
});

describe("an authorize hook", () => {
  const meshbox = createMeshbox({ authorize: appAuthorize });

  it("admits what it grants, with the grant's access", async () => {
    const mesh = newMesh();
    const put = await call(meshbox, `/sync/io/${mesh}/file?path=/App/a.bin`, {
      method: "PUT",
      body: "abc",
      headers: { "X-App-Token": "rw-alice" },
    });
    expect(put.status).toBe(201);
    const read = await call(meshbox, `/sync/io/${mesh}/file?path=/App/a.bin`, { headers: { "X-App-Token": "ro-bob" } });
    expect(read.status).toBe(200);
    expect(await read.text()).toBe("abc");
  });

  it("answers 403 to a write under a read-only grant and stores nothing", async () => {
    const mesh = newMesh();
    const res = await call(meshbox, `/sync/io/${mesh}/file?path=/App/a.bin`, {
      method: "PUT",
      body: "abc",
      headers: { "X-App-Token": "ro-bob" },
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ error: "forbidden", message: "This grant is read-only." });
    const after = await call(meshbox, `/sync/io/${mesh}/file?path=/App/a.bin`, { headers: { "X-App-Token": "rw-alice" } });
    expect(after.status).toBe(404);
  });

  it("answers 401 with a Bearer challenge when it returns null, even with open access on", async () => {
    expect(readConfig(quiet).allowOpenAccess).toBe(true);
    const res = await call(meshbox, `/sync/io/${newMesh()}/health`);
    expect(res.status).toBe(401);
    expect(res.headers.get("WWW-Authenticate")).toBe("Bearer");
    expect(await res.json()).toEqual({ error: "unauthorized", message: "This mesh needs a credential the app accepts." });
  });

  it("is named \"app\" by /sync/health, which answers 200 with no built-in mode configured", async () => {
    const closed = { ...quiet, ALLOW_OPEN_ACCESS: "0" } as Env;
    const health = await call(meshbox, "/sync/health", {}, closed);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true, service: "meshbox", auth: ["app"] });
    expect((await call(createMeshbox(), "/sync/health", {}, closed)).status).toBe(503);
  });

  it("answers the HttpError it throws", async () => {
    const res = await call(meshbox, `/sync/io/${newMesh()}/health`, { headers: { "X-App-Token": "banned" } });
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ error: "forbidden", message: "This account is suspended." });
  });

  it("turns its refusals into the concealed 404 under CONCEAL_DENIED", async () => {
    const res = await call(meshbox, `/sync/io/${newMesh()}/health`, {}, { ...quiet, CONCEAL_DENIED: "1" } as Env);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: "not_found", message: "Not found." });
  });

  it("can fall back to the built-in modes", async () => {
    const layered = createMeshbox({
      authorize: (request, _meshId, { builtIn }) =>
        request.headers.has("X-App-Token") ? appAuthorize(request, _meshId, { builtIn } as never) : builtIn(),
    });
    const open = await call(layered, `/sync/io/${newMesh()}/health`);
    expect(open.status).toBe(200);
    const closed = await call(layered, `/sync/io/${newMesh()}/health`, {}, { ...quiet, ALLOW_OPEN_ACCESS: "0" } as Env);
    expect(closed.status).toBe(503);
    expect(await closed.json()).toMatchObject({ error: "auth_not_configured" });
  });

  it("leaves other instances and the default app to the built-in modes", async () => {
    const res = await call(createMeshbox(), `/sync/io/${newMesh()}/health`);
    expect(res.status).toBe(200);
  });

  it("passes its subject to the instance's audit hook", async () => {
    const events: AuditEvent[] = [];
    const audited = createMeshbox({ authorize: appAuthorize, audit: (event) => void events.push(event) });
    const mesh = newMesh();
    const put = await call(audited, `/sync/io/${mesh}/file?path=/App/a.bin`, {
      method: "PUT",
      body: "abc",
      headers: { "X-App-Token": "rw-alice", "Content-Length": "3" },
    });
    expect(put.status).toBe(201);
    await call(meshbox, `/sync/io/${mesh}/file?path=/App/b.bin`, { method: "PUT", body: "b", headers: { "X-App-Token": "rw-eve" } });
    expect(events).toEqual([
      {
        requestId: expect.any(String),
        at: expect.any(Number),
        op: "write",
        route: "/sync/io/:mesh/file",
        mesh,
        target: "/App/a.bin",
        status: 201,
        bytesIn: 3,
        principal: { kind: "app", subject: "alice" },
      },
    ]);
  });
});
