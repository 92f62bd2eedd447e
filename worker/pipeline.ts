// The request pipeline's before/finally steps: request id, CORS preflight, CORS headers, and the
// one structured log line per request (never a token: only route, mesh, status, sizes, time).
import type { Env } from "./env";
import type { MeshRequest } from "./request-context";
import { readConfig } from "./lib/config";
import { preflightResponse, withCors } from "./lib/cors";

export function beginRequest(request: MeshRequest): void {
  request.requestId = request.headers.get("cf-ray") ?? crypto.randomUUID();
  request.startedAt = Date.now();
}

export function preflight(request: MeshRequest, env: Env): Response | undefined {
  if (request.method === "OPTIONS") return preflightResponse(request, readConfig(env));
  return undefined;
}

export function corsify(response: Response, request: MeshRequest, env: Env): Response {
  return withCors(request, response, readConfig(env));
}

export function logRequest(response: Response, request: MeshRequest, env: Env): Response {
  if (!readConfig(env).logRequests) return response;
  const line = {
    level: "info",
    msg: "request",
    requestId: request.requestId,
    method: request.method,
    route: request.route ?? null,
    mesh: request.meshId ?? null,
    status: response.status,
    bytesIn: Number(request.headers.get("Content-Length") ?? 0),
    bytesOut: Number(response.headers.get("Content-Length") ?? 0),
    ms: Date.now() - request.startedAt,
  };
  console.log(JSON.stringify(line));
  if (response.status === 101) return response;
  const headers = new Headers(response.headers);
  headers.set("X-Request-Id", request.requestId);
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}
