// Recovery wrappers (PROTOCOL.md section 5). The locator is the capability: no mesh, no auth.
import type { Handler } from "../request-context";
import { HttpError, badRequest } from "../lib/errors";
import { readConfig } from "../lib/config";
import { readBodyWithin } from "../lib/body";
import { putRecoveryWrapper, readRecoveryWrapper } from "../objects/recovery";

const LOCATOR = /^[A-Za-z0-9_-]{43}$/;

function locatorOf(raw: unknown): string {
  if (typeof raw !== "string" || !LOCATOR.test(raw)) {
    throw badRequest("The recovery locator must be 43 characters of [A-Za-z0-9_-].");
  }
  return raw;
}

export const putWrapper: Handler = async (request, env) => {
  const locator = locatorOf(request.params.locator);
  const body = await readBodyWithin(request, readConfig(env).limits.recovery, "recovery wrapper");
  const stored = await putRecoveryWrapper(env, locator, body);
  return new Response(JSON.stringify({ ok: true, size: stored.size }), {
    status: 201,
    headers: { "Content-Type": "application/json", ETag: stored.httpEtag },
  });
};

export const getWrapper: Handler = async (request, env) => {
  const locator = locatorOf(request.params.locator);
  const object = await readRecoveryWrapper(env, locator, { body: request.isHead !== true });
  if (object === null) throw new HttpError("not_found", "No recovery wrapper at this locator.");
  return new Response("body" in object ? (object as R2ObjectBody).body : null, {
    status: 200,
    headers: {
      "Content-Type": "application/octet-stream",
      "Content-Length": String(object.size),
      ETag: object.httpEtag,
      "Cache-Control": "no-store",
    },
  });
};
