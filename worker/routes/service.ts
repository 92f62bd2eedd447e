// Service liveness and the landing document: no auth, no storage. Health also says which auth
// modes are configured (names only), and answers 503 when none is, so a smoke test fails on a
// tenant that cannot serve anyone; the landing document does the same.
import { json } from "itty-router";
import type { Handler } from "../request-context";
import { readConfig } from "../lib/config";
import { VERSION } from "../lib/version";
import { configuredAuthModes } from "../auth";
import { openApiDocument } from "../openapi";

export const health: Handler = async (_request, env) =>
  json({ ok: true, service: "meshbox", auth: await configuredAuthModes(env) });

/** What a person or tool finds at the mount prefix: where the docs are and which auth modes are on. */
export const landing: Handler = async (_request, env) => {
  const prefix = readConfig(env).mountPrefix === "/" ? "" : readConfig(env).mountPrefix;
  return json({
    service: "meshbox",
    version: VERSION,
    docs: { protocol: "docs/PROTOCOL.md", client: "docs/CLIENT.md" },
    openapi: `${prefix}/openapi.json`,
    auth: await configuredAuthModes(env),
  });
};

export const openApi: Handler = (_request, env) => json(openApiDocument(readConfig(env).mountPrefix));
