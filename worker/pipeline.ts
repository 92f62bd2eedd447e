// The request pipeline's before/finally steps: request id, CORS preflight, CORS headers, the one
// structured log line per request, and the optional audit hook. The log line never carries a
// token or a query string: only the route pattern, the validated mesh id, status, sizes and time.
import type { Env } from "./env";
import type { MeshRequest } from "./request-context";
import { readConfig } from "./lib/config";
import { preflightResponse, withCors } from "./lib/cors";
import { errorResponse, notFound } from "./lib/errors";
import { hooksOf, type AuditEvent, type AuditHook } from "./hooks";
import { withHeaderChanges } from "./lib/headers";

export type { AuditEvent, AuditHook } from "./hooks";

let auditHook: AuditHook | null = null;

/**
 * Installs (or, with null, removes) a process-wide callback (createMeshbox's `audit` option takes
 * precedence for its own requests) for completed storage writes and deletes, e.g. to
 * forward them to a queue or an analytics dataset. It runs after the response is sent (in
 * waitUntil), so it never delays or fails a client request; its errors are logged and dropped.
 */
export function setAuditHook(hook: AuditHook | null): void {
  auditHook = hook;
}

// In production cf-ray is set by Cloudflare; locally a client could send anything, so only an
// id-shaped value is trusted.
const REQUEST_ID = /^[A-Za-z0-9-]{1,64}$/;

/**
 * Every route that answers GET answers HEAD with the same status and headers and no body (RFC
 * 9110, PROTOCOL.md section 7). Rather than a HEAD twin for each GET row of the route table, a
 * HEAD request is routed as a GET marked `isHead`, and `withoutBodyForHead` drops the body.
 */
export function routable(request: Request): MeshRequest {
  if (request.method !== "HEAD") return request as MeshRequest;
  const get = new Request(request, { method: "GET" }) as MeshRequest;
  get.isHead = true;
  return get;
}

/** The method the client sent (HEAD is routed as GET). */
export function clientMethod(request: MeshRequest): string {
  return request.isHead === true ? "HEAD" : request.method;
}

/**
 * Answers a HEAD with the GET answer's status and headers and no body. A handler that knows the
 * size from metadata (the object routes) already answers without a body; a small generated body
 * (JSON) is measured so Content-Length matches what GET would send.
 */
export async function withoutBodyForHead(response: Response, request: MeshRequest): Promise<Response> {
  if (request.isHead !== true || response.status === 101 || response.webSocket) return response;
  const headers = new Headers(response.headers);
  if (response.body !== null) {
    if (headers.has("Content-Length")) {
      await response.body.cancel();
    } else {
      headers.set("Content-Length", String((await response.arrayBuffer()).byteLength));
    }
  }
  return new Response(null, { status: response.status, statusText: response.statusText, headers });
}

export function beginRequest(request: MeshRequest): void {
  const ray = request.headers.get("cf-ray");
  request.requestId = ray !== null && REQUEST_ID.test(ray) ? ray : crypto.randomUUID();
  request.startedAt = Date.now();
}

export function preflight(request: MeshRequest, env: Env): Response | undefined {
  if (request.method === "OPTIONS") return preflightResponse(request, readConfig(env));
  return undefined;
}

/** Outside the mount prefix no route matches at all: that is a 404 like any unknown route. */
export function orNotFound(response: Response | undefined): Response {
  return response ?? errorResponse(notFound("No such route."));
}

export function corsify(response: Response, request: MeshRequest, env: Env): Response {
  return withCors(request, response, readConfig(env));
}

function declaredBytes(headers: Headers): number | null {
  const raw = headers.get("Content-Length");
  return raw !== null && /^\d{1,16}$/.test(raw.trim()) ? Number(raw.trim()) : null;
}

interface LogLine {
  level: "info" | "warn" | "error";
  msg: "request";
  requestId: string;
  method: string;
  route: string | null;
  mesh: string | null;
  status: number;
  bytesIn: number | null;
  bytesOut: number;
  ms: number;
}

function emit(line: LogLine): void {
  console.log(JSON.stringify(line));
}

/** Routes whose bodies are stored objects: audited on write, never buffered on read. */
const OBJECT_ROUTES = /\/(io\/:mesh\/(file|stored-file)|recovery\/:locator)$/;

function routeOf(request: MeshRequest): string | null {
  return typeof request.route === "string" ? request.route : null;
}

function auditEventOf(request: MeshRequest, status: number, at: number): AuditEvent | null {
  if (status < 200 || status > 299) return null;
  const op = request.method === "PUT" ? "write" : request.method === "DELETE" ? "delete" : null;
  const route = routeOf(request) ?? "";
  if (op === null || !OBJECT_ROUTES.test(route)) return null;
  const path = request.query?.path;
  const locator = request.params?.locator;
  return {
    requestId: request.requestId,
    at,
    op,
    route,
    mesh: request.meshId ?? null,
    target: typeof path === "string" ? path : typeof locator === "string" ? locator : null,
    status,
    bytesIn: declaredBytes(request.headers),
    principal: request.principal
      ? { kind: request.principal.kind, subject: request.principal.subject }
      : null,
  };
}

function runAuditHook(event: AuditEvent, env: Env, ctx: ExecutionContext | undefined): void {
  const hook = hooksOf(env).audit ?? auditHook;
  if (hook === null) return;
  const run = (async () => hook(event, env))().catch((err: unknown) => {
    console.error(
      JSON.stringify({
        level: "error",
        msg: "audit hook failed",
        requestId: event.requestId,
        error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
      }),
    );
  });
  ctx?.waitUntil(run);
}

/**
 * Counts a streamed body as it goes out and calls `done` once with the total, when the stream
 * ends, errors, or the client goes away (cancel). A pull-through stream rather than a
 * TransformStream, so a cancel reaches us (and the source) at once.
 */
function countingBody(body: ReadableStream<Uint8Array>, done: (bytes: number) => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let bytes = 0;
  let reported = false;
  const report = () => {
    if (!reported) {
      reported = true;
      done(bytes);
    }
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { done: finished, value } = await reader.read();
          if (finished) {
            controller.close();
            report();
            return;
          }
          bytes += value.byteLength;
          controller.enqueue(value);
        } catch (err) {
          report();
          controller.error(err);
        }
      },
      async cancel(reason) {
        report();
        await reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * The last step of every request: adds X-Request-Id, writes the log line and fires the audit hook.
 * workerd does not expose a computed Content-Length on constructed responses, so bytesOut comes
 * from the header when a handler set it, from the buffered bytes for the API's own JSON answers
 * (small, and buffering keeps the wire Content-Length), and otherwise by counting the stream as it
 * is sent. A stored object is never buffered, whatever its Content-Type: it may be 100 MiB.
 */
export async function logRequest(
  response: Response,
  request: MeshRequest,
  env: Env,
  ctx?: ExecutionContext,
): Promise<Response> {
  const config = readConfig(env);
  const now = Date.now();
  const audit = auditEventOf(request, response.status, now);
  if (audit !== null) runAuditHook(audit, env, ctx);

  const line = (bytesOut: number): LogLine => ({
    level: response.status >= 500 ? "error" : "info",
    msg: "request",
    requestId: request.requestId,
    method: clientMethod(request),
    route: routeOf(request),
    mesh: request.meshId ?? null,
    status: response.status,
    bytesIn: declaredBytes(request.headers),
    bytesOut,
    ms: Date.now() - request.startedAt,
  });

  // A WebSocket upgrade response cannot be rebuilt (it carries the socket); it has no body.
  if (response.status === 101 || response.webSocket) {
    if (config.logRequests) emit(line(0));
    return response;
  }

  const answer = withHeaderChanges(response, (headers) => headers.set("X-Request-Id", request.requestId));

  if (!config.logRequests) return answer;
  if (answer.body === null) {
    emit(line(0));
    return answer;
  }
  const declared = declaredBytes(answer.headers);
  if (declared !== null) {
    emit(line(declared));
    return answer;
  }
  const isObjectBody = OBJECT_ROUTES.test(routeOf(request) ?? "") && request.method === "GET";
  if (!isObjectBody && (answer.headers.get("Content-Type") ?? "").includes("json")) {
    const bytes = await answer.arrayBuffer();
    emit(line(bytes.byteLength));
    return new Response(bytes, answer);
  }
  let finished!: () => void;
  const sent = new Promise<void>((resolve) => (finished = resolve));
  ctx?.waitUntil(sent);
  const body = countingBody(answer.body, (bytes) => {
    emit(line(bytes));
    finished();
  });
  return new Response(body, answer);
}
