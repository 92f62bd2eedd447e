// CORS: '*' by default, or an exact allowlist of origins (with Vary: Origin).
import type { Config } from "./config";
import { withHeaderChanges } from "./headers";

const ALLOWED_HEADERS = [
  "Authorization",
  "Content-Type",
  "If-Match",
  "If-None-Match",
  "X-Interocitor-Device-Id",
  "X-Interocitor-Plaintext-Size",
  "X-Interocitor-Taint",
  "X-Interocitor-Seal-Guard",
].join(", ");
const ALLOWED_METHODS = "GET, HEAD, PUT, POST, DELETE, OPTIONS";
// X-Request-Id: a browser app can only put the id in an error report if it may read it.
const EXPOSED_HEADERS = "ETag, Last-Modified, Content-Length, Retry-After, X-Request-Id";

function allowedOrigin(config: Config, origin: string | null): string | null {
  if (config.corsOrigins === "*") return "*";
  if (origin !== null && config.corsOrigins.includes(origin)) return origin;
  return null;
}

/** Answers an OPTIONS preflight before any auth. */
export function preflightResponse(request: Request, config: Config): Response {
  const headers = new Headers({
    "Access-Control-Allow-Methods": ALLOWED_METHODS,
    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
    "Access-Control-Max-Age": "86400",
  });
  const origin = allowedOrigin(config, request.headers.get("Origin"));
  if (origin !== null) headers.set("Access-Control-Allow-Origin", origin);
  if (config.corsOrigins !== "*") headers.set("Vary", "Origin");
  return new Response(null, { status: 204, headers });
}

/** Adds CORS headers to a response; WebSocket upgrades (101) are passed through untouched. */
export function withCors(request: Request, response: Response, config: Config): Response {
  if (response.status === 101) return response;
  const origin = allowedOrigin(config, request.headers.get("Origin"));
  return withHeaderChanges(response, (headers) => {
    if (origin !== null) {
      headers.set("Access-Control-Allow-Origin", origin);
      headers.set("Access-Control-Expose-Headers", EXPOSED_HEADERS);
    }
    if (config.corsOrigins !== "*" && !/\bOrigin\b/i.test(headers.get("Vary") ?? "")) headers.append("Vary", "Origin");
  });
}
