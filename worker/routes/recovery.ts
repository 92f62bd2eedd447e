// Recovery wrappers (PROTOCOL.md section 5). The locator is the capability: no mesh, no auth.
import type { Handler } from "../request-context";
import { HttpError, badRequest } from "../lib/errors";
import { readConfig } from "../lib/config";
import { readBodyWithin } from "../lib/body";
import {
  putRecoveryWrapper,
  readRecoveryWrapper,
  releaseRecoveryWrapper,
  reserveRecoveryWrapper,
} from "../objects/recovery";
import { enforceIpLimit } from "../identity/abuse-limits";

const LOCATOR = /^[A-Za-z0-9_-]{43}$/;

function locatorOf(raw: unknown): string {
  if (typeof raw !== "string" || !LOCATOR.test(raw)) {
    throw badRequest("The recovery locator must be 43 characters of [A-Za-z0-9_-].");
  }
  return raw;
}

export const putWrapper: Handler = async (request, env) => {
  const locator = locatorOf(request.params.locator);
  const config = readConfig(env);
  await enforceIpLimit(env.DB, "recovery-ip", request, config.recoveryRateLimitPerMinute);
  const body = await readBodyWithin(request, config.limits.recovery, "recovery wrapper");
  await reserveRecoveryWrapper(env.DB, locator, body.byteLength, {
    maxCount: config.recoveryMaxCount,
    maxBytes: config.recoveryMaxBytes,
  });
  let stored: R2Object;
  try {
    stored = await putRecoveryWrapper(env, locator, body);
  } catch (err) {
    // Not stored (or stored before this server tracked wrappers: a 409): the quota goes back.
    await releaseRecoveryWrapper(env.DB, locator).catch(() => undefined);
    throw err;
  }
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
