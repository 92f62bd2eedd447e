// Service liveness and the landing document: no auth, no storage.
import { json } from "itty-router";
import type { Handler } from "../request-context";
import { readConfig } from "../lib/config";
import { VERSION } from "../lib/version";
import { configuredAuthModes } from "../auth";
import { openApiDocument } from "../openapi";

export const health: Handler = () => json({ ok: true, service: "meshbox" });

/** What a person or tool finds at the mount prefix: where the docs are and which auth modes are on. */
export const landing: Handler = (_request, env) => {
  const config = readConfig(env);
  const prefix = config.mountPrefix === "/" ? "" : config.mountPrefix;
  return json({
    service: "meshbox",
    version: VERSION,
    docs: { protocol: "docs/PROTOCOL.md", client: "docs/CLIENT.md" },
    openapi: `${prefix}/openapi.json`,
    auth: configuredAuthModes(env, config),
  });
};

export const openApi: Handler = (_request, env) => json(openApiDocument(readConfig(env).mountPrefix));
