// Service liveness: no auth, no storage. It also says which auth modes are configured (names
// only), and answers 503 when none is, so a smoke test fails on a tenant that cannot serve anyone.
import { json } from "itty-router";
import type { Handler } from "../request-context";
import { configuredAuthModes } from "../auth";

export const health: Handler = async (_request, env) =>
  json({ ok: true, service: "meshbox", auth: await configuredAuthModes(env) });
