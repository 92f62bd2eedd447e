// The admin API client every CLI group uses: MESHBOX_URL (default the local `wrangler dev`,
// http://127.0.0.1:8787/sync) and MESHBOX_ADMIN_TOKEN from io.env.
import { CommandError, UsageError } from "./args.mjs";

export const DEFAULT_URL = "http://127.0.0.1:8787/sync";

/** The admin API base, e.g. https://host/sync/admin (the mount prefix /sync when the URL has no path). */
export function adminBase(raw) {
  let url;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`MESHBOX_URL ${JSON.stringify(raw)} is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError("MESHBOX_URL must be http(s)");
  const path = url.pathname.replace(/\/+$/, "");
  return `${url.origin}${path === "" ? "/sync" : path}/admin`;
}

/** An HTTP refusal from the admin API, with its status and error code kept for callers. */
export class AdminError extends CommandError {
  constructor(status, code, message) {
    super(`${status}${code ? ` ${code}` : ""}: ${message}`);
    this.status = status;
    this.code = code;
  }
}

/**
 * Calls `<base>/admin<path>`. `init.body` may be a plain object (sent as JSON). Resolves to the
 * parsed JSON answer (null for an empty one); throws AdminError for an HTTP error and
 * CommandError when the server cannot be reached.
 */
export async function adminFetch(path, init = {}, io) {
  const env = io?.env ?? process.env;
  const base = adminBase(env.MESHBOX_URL || DEFAULT_URL);
  const token = env.MESHBOX_ADMIN_TOKEN;
  if (!token) throw new UsageError("no admin token: set MESHBOX_ADMIN_TOKEN (or pass --token)");
  const headers = { Authorization: `Bearer ${token}`, Accept: "application/json", ...(init.headers ?? {}) };
  let body = init.body;
  if (body !== undefined && body !== null && typeof body === "object" && !(body instanceof Uint8Array) && !(body instanceof ReadableStream)) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(`${base}${path}`, {
      ...init,
      headers,
      body,
      signal: init.signal ?? AbortSignal.timeout(120_000),
    });
  } catch (err) {
    throw new CommandError(`could not reach ${base}: ${err?.cause?.message ?? err?.message ?? err}`);
  }
  const text = await res.text();
  let parsed = null;
  try {
    parsed = text === "" ? null : JSON.parse(text);
  } catch {
    // not JSON: reported below if the status is an error
  }
  if (!res.ok) {
    const message = parsed && typeof parsed.message === "string" ? parsed.message : text.slice(0, 500) || res.statusText;
    throw new AdminError(res.status, parsed && typeof parsed.error === "string" ? parsed.error : "", message);
  }
  return parsed;
}

export const enc = encodeURIComponent;
