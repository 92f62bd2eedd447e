import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { logRequest, setAuditHook, type AuditEvent } from "../../worker/pipeline";
import type { MeshRequest } from "../../worker/request-context";
import { meshBearerToken } from "../../worker/auth";
import { adminEnv, call, putFile, uniqueMesh } from "./admin-support";

// A mesh bearer secret, so the logged request can carry a real credential (open mode refuses an invalid one).
const MESH_SECRET = "pipeline-mesh-token-secret";
const logging = adminEnv({ LOG_REQUESTS: "1", MESH_TOKEN_SECRET: MESH_SECRET });
const quiet = adminEnv();

afterEach(() => {
  setAuditHook(null);
  vi.restoreAllMocks();
});

/** Calls the worker and returns its response and the request log lines it printed. */
async function logged(path: string, init: RequestInit = {}) {
  const log = vi.spyOn(console, "log").mockImplementation(() => {});
  const res = await call(logging, path, init);
  const lines = log.mock.calls
    .map((args) => JSON.parse(String(args[0])) as Record<string, unknown>)
    .filter((line) => line.msg === "request");
  log.mockRestore();
  return { res, lines };
}

describe("the request log line", () => {
  it("is one JSON line with request id, method, route pattern, mesh, status, sizes and time", async () => {
    const mesh = uniqueMesh();
    const token = await meshBearerToken(mesh, MESH_SECRET);
    const { res, lines } = await logged(`/io/${mesh}/file?path=/App/secret-name.bin`, {
      method: "PUT",
      headers: { Authorization: `Bearer ${token}`, "Content-Length": "5" },
      body: "12345",
    });
    expect(res.status).toBe(201);
    expect(lines).toEqual([
      {
        level: "info",
        msg: "request",
        requestId: res.headers.get("X-Request-Id"),
        method: "PUT",
        route: "/sync/io/:mesh/file",
        mesh,
        status: 201,
        bytesIn: 5,
        bytesOut: expect.any(Number),
        ms: expect.any(Number),
      },
    ]);
    const text = JSON.stringify(lines);
    expect(text).not.toContain(token);
    expect(text).not.toContain("secret-name");
    expect(text).not.toContain("?");
  });

  it("counts the bytes of a JSON answer", async () => {
    const { res, lines } = await logged("/health");
    const body = await res.text();
    expect(lines[0]).toMatchObject({ route: "/sync/health", mesh: null, status: 200, bytesIn: null, bytesOut: body.length });
  });

  it("counts the bytes of a file body as it is sent", async () => {
    const mesh = uniqueMesh();
    expect((await putFile(quiet, mesh, "/App/blob.bin", "x".repeat(3000))).status).toBe(201);
    const { res, lines } = await logged(`/io/${mesh}/file?path=/App/blob.bin`);
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBe(3000);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ method: "GET", status: 200, bytesOut: 3000 });
  });

  it("logs errors with their status, and an unknown route with a null route mesh", async () => {
    const { res, lines } = await logged("/io/-bad/health");
    expect(res.status).toBe(400);
    expect(lines[0]).toMatchObject({ level: "info", status: 400, mesh: null, bytesOut: expect.any(Number) });
  });

  it("takes an id-shaped cf-ray as the request id and ignores anything else", async () => {
    const ray = await logged("/health", { headers: { "cf-ray": "8f00aa11bb22cc33-AMS" } });
    expect(ray.res.headers.get("X-Request-Id")).toBe("8f00aa11bb22cc33-AMS");
    expect(ray.lines[0]?.requestId).toBe("8f00aa11bb22cc33-AMS");
    const forged = await logged("/health", { headers: { "cf-ray": "x y {injected}" } });
    expect(forged.res.headers.get("X-Request-Id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("is not written when LOG_REQUESTS=0, while X-Request-Id still is", async () => {
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    const res = await call(quiet, "/health");
    expect(log.mock.calls.filter((args) => String(args[0]).includes('"msg":"request"'))).toEqual([]);
    expect(res.headers.get("X-Request-Id")).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("logRequest on a streamed body of unknown length", () => {
  function objectRequest(): MeshRequest {
    return Object.assign(new Request("http://meshbox.test/sync/io/m1/file?path=/a"), {
      requestId: "req-1",
      startedAt: Date.now(),
      route: "/sync/io/:mesh/file",
      meshId: "m1",
      query: { path: "/a" },
      params: { mesh: "m1" },
    }) as unknown as MeshRequest;
  }

  function chunks(count: number, size: number): ReadableStream<Uint8Array> {
    let sent = 0;
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < count) controller.enqueue(new Uint8Array(size));
        else controller.close();
      },
    });
  }

  it("writes the line once the body is sent, with the bytes actually sent", async () => {
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    const ctx = createExecutionContext();
    const res = await logRequest(
      new Response(chunks(5, 1000), { headers: { "Content-Type": "application/json" } }),
      objectRequest(),
      logging,
      ctx,
    );
    expect(log).not.toHaveBeenCalled();
    expect(res.headers.get("X-Request-Id")).toBe("req-1");
    expect((await res.arrayBuffer()).byteLength).toBe(5000);
    await waitOnExecutionContext(ctx);
    expect(log.mock.calls.map((args) => JSON.parse(String(args[0])))).toEqual([
      expect.objectContaining({ msg: "request", requestId: "req-1", route: "/sync/io/:mesh/file", bytesOut: 5000 }),
    ]);
  });

  it("still writes the line, with what was sent, when the client goes away", async () => {
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    const ctx = createExecutionContext();
    const res = await logRequest(new Response(chunks(1000, 100)), objectRequest(), logging, ctx);
    const reader = res.body!.getReader();
    await reader.read();
    await reader.cancel();
    await waitOnExecutionContext(ctx);
    const lines = log.mock.calls.map((args) => JSON.parse(String(args[0])) as { bytesOut: number });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.bytesOut).toBeLessThan(100_000);
  });
});

describe("the audit hook", () => {
  it("hears each completed write and delete with mesh, target and principal", async () => {
    const events: AuditEvent[] = [];
    setAuditHook((event) => {
      events.push(event);
    });
    const mesh = uniqueMesh();
    const put = await call(quiet, `/io/${mesh}/file?path=/App/a.bin`, {
      method: "PUT",
      headers: { "Content-Length": "3" },
      body: "abc",
    });
    expect(put.status).toBe(201);
    expect((await call(quiet, `/io/${mesh}/file?path=/App/a.bin`)).status).toBe(200);
    expect((await call(quiet, `/io/${mesh}/file?path=/App/a.bin`, { method: "DELETE" })).status).toBe(204);
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
        principal: { kind: "open", subject: null },
      },
      expect.objectContaining({ op: "delete", mesh, target: "/App/a.bin", status: 204 }),
    ]);
  });

  it("does not hear refused writes", async () => {
    const events: AuditEvent[] = [];
    setAuditHook((event) => {
      events.push(event);
    });
    const res = await call(quiet, `/io/${uniqueMesh()}/file?path=/App/../x`, { method: "PUT", body: "x" });
    expect(res.status).toBe(400);
    expect(events).toEqual([]);
  });

  it("never fails or delays the request when the hook throws", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    setAuditHook(() => {
      throw new Error("audit sink down");
    });
    expect((await putFile(quiet, uniqueMesh(), "/App/b.bin", "b")).status).toBe(201);
    expect(errors.mock.calls.map((args) => String(args[0])).join("\n")).toContain("audit hook failed");
  });
});
