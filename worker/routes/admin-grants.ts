// Admin API for mesh grants of identity-provider subjects (requireAdmin runs first in the route
// table): GET/POST /admin/grants, DELETE /admin/grants/:id.
import type { Handler } from "../request-context";
import { badRequest, notFound } from "../lib/errors";
import { DEFAULTS } from "../lib/config";
import { readJsonObject } from "../lib/body";
import { createGrant, isValidSubject, listGrants as listGrantRecords, revokeGrant as revokeGrantRecord } from "../identity/grants";

const json = (body: unknown, status = 200): Response =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

const GRANT_ID = /^grt_[0-9a-f]{16}$/;

/** GET /admin/grants?sub=S: every grant, or one subject's. */
export const listGrants: Handler = async (request, env) => {
  const { sub } = request.query;
  if (Array.isArray(sub)) throw badRequest("Give sub at most once.");
  if (sub !== undefined && !isValidSubject(sub)) throw badRequest("sub must be a subject (the token's sub claim).");
  return json({ grants: await listGrantRecords(env.DB, sub) });
};

/** POST /admin/grants `{ subject, meshPattern, access? }` → 201 the grant. */
export const addGrant: Handler = async (request, env) => {
  const body = await readJsonObject(request, DEFAULTS.limits.jsonBody);
  const grant = await createGrant(env.DB, { subject: body.subject, meshPattern: body.meshPattern, access: body.access });
  return json(grant, 201);
};

/** DELETE /admin/grants/:id → 200 `{ grant }`; 404 when unknown. */
export const revokeGrant: Handler = async (request, env) => {
  const id = request.params.id;
  if (typeof id !== "string" || !GRANT_ID.test(id)) throw badRequest("The grant id is malformed (grt_ and 16 hex digits).");
  const revoked = await revokeGrantRecord(env.DB, id);
  if (revoked === null) throw notFound(`No grant has the id ${id}.`);
  return json({ grant: revoked });
};
