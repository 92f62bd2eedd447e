// One error type for the whole request pipeline: thrown anywhere, turned into the JSON error
// body of PROTOCOL.md section 7 in exactly one place (toErrorResponse).

export type ErrorCode =
  | "bad_request"
  | "invalid_body"
  | "invalid_path"
  | "invalid_mesh_id"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "method_not_allowed"
  | "conflict"
  | "precondition_failed"
  | "payload_too_large"
  | "upgrade_required"
  | "rate_limited"
  | "auth_not_configured"
  | "unavailable"
  | "index_moving"
  | "internal_error";

const STATUS_BY_CODE: Record<ErrorCode, number> = {
  bad_request: 400,
  invalid_body: 400,
  invalid_path: 400,
  invalid_mesh_id: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  precondition_failed: 412,
  payload_too_large: 413,
  upgrade_required: 426,
  rate_limited: 429,
  auth_not_configured: 503,
  unavailable: 503,
  index_moving: 503,
  internal_error: 500,
};

export interface HttpErrorOptions {
  /** Extra JSON fields merged into the body, e.g. `{ limit }` for 413 or `{ file: null }`. */
  extra?: Record<string, unknown>;
  headers?: Record<string, string>;
}

export class HttpError extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  readonly extra: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, message: string, options: HttpErrorOptions = {}) {
    super(message);
    this.name = "HttpError";
    this.code = code;
    this.status = STATUS_BY_CODE[code];
    this.extra = options.extra ?? {};
    this.headers = options.headers ?? {};
  }
}

export const badRequest = (message: string, options?: HttpErrorOptions) =>
  new HttpError("bad_request", message, options);
export const notFound = (message: string, options?: HttpErrorOptions) =>
  new HttpError("not_found", message, options);
export const conflict = (message: string, options?: HttpErrorOptions) =>
  new HttpError("conflict", message, options);
export const methodNotAllowed = (method: string, allowed: readonly string[]) =>
  new HttpError("method_not_allowed", `${method} is not allowed here; use ${allowed.join(", ")}.`, {
    headers: { Allow: allowed.join(", ") },
  });
export const payloadTooLarge = (limit: number, what: string) =>
  new HttpError("payload_too_large", `The ${what} is larger than the limit of ${limit} bytes.`, {
    extra: { limit },
  });
export const unavailable = (message: string) => new HttpError("unavailable", message);

export function errorResponse(error: HttpError): Response {
  return new Response(
    JSON.stringify({ error: error.code, message: error.message, ...error.extra }),
    {
      status: error.status,
      headers: { "Content-Type": "application/json", ...error.headers },
    },
  );
}

/**
 * The single place errors become responses. Anything that is not an HttpError is our bug, not
 * the client's: it is logged (without request secrets) and answered 500 with no details.
 */
export function toErrorResponse(err: unknown): Response {
  if (err instanceof HttpError) return errorResponse(err);
  console.error(
    JSON.stringify({
      level: "error",
      msg: "unhandled error",
      error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
      stack: err instanceof Error ? err.stack : undefined,
    }),
  );
  return errorResponse(new HttpError("internal_error", "Internal error; the request was not completed."));
}
