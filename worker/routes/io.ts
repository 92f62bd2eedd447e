// Sync IO routes (PROTOCOL.md sections 2-3): parse and validate, call one storage function, shape
// the response.
import type { Handler, MeshRequest } from "../request-context";
import { HttpError, badRequest } from "../lib/errors";
import { readConfig } from "../lib/config";
import { readJsonObject } from "../lib/body";
import { normalizeFilePath, normalizePath } from "../lib/paths";
import { toFileInfo, type Precondition } from "../objects/object-types";
import * as files from "../objects/files";
import { SYNC_OBJECT_CONTENT_TYPE } from "../objects/r2-objects";
import { touchRead } from "../objects/usage";

const JSON_HEADERS = { "Content-Type": "application/json" };

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: JSON_HEADERS });
}

/** The `path` query parameter of the /file routes (exactly one). */
function queryPath(request: MeshRequest): string {
  const values = new URL(request.url).searchParams.getAll("path");
  if (values.length !== 1) throw badRequest("Give exactly one `path` query parameter.");
  return normalizeFilePath(values[0]);
}

/** The `path` field of the POST routes' JSON body. */
async function bodyPath(request: MeshRequest, limit: number): Promise<unknown> {
  const body = await readJsonObject(request, limit);
  if (typeof body.path !== "string") throw badRequest("The body must be a JSON object with a string `path`.");
  return body.path;
}

/** If-Match / If-None-Match; a blank header states no condition, so it is ignored. */
function preconditionOf(request: Request): Precondition {
  const pre: Precondition = {};
  const ifMatch = request.headers.get("If-Match")?.trim();
  const ifNoneMatch = request.headers.get("If-None-Match")?.trim();
  if (ifMatch) pre.ifMatch = ifMatch;
  if (ifNoneMatch) pre.ifNoneMatch = ifNoneMatch;
  return pre;
}

export const health: Handler = (request) => json({ ok: true, mesh: request.meshId });

/**
 * GET (and HEAD, with metadata only) of a sync object. Always application/octet-stream: sync
 * objects are ciphertext or client JSON that the client reads as bytes, whatever type the writer
 * declared (a curl upload must not come back as a form).
 */
export const getFile: Handler = async (request, env, ctx) => {
  const path = queryPath(request);
  const found = await files.readFile(env, request.meshId, path, { body: request.isHead !== true });
  touchRead(env, ctx, request.meshId);
  if (found === null) throw new HttpError("not_found", `No file at ${path}.`);
  const headers = new Headers({ "Content-Type": SYNC_OBJECT_CONTENT_TYPE, "Content-Length": String(found.size) });
  if (found.etag !== null) headers.set("ETag", found.etag);
  if (found.modifiedAt !== null) headers.set("Last-Modified", new Date(found.modifiedAt).toUTCString());
  headers.set("Cache-Control", "no-store");
  return new Response(found.body, { status: 200, headers });
};

export const putFile: Handler = async (request, env, ctx) => {
  const path = queryPath(request);
  const outcome = await files.putFile({ env, ctx, meshId: request.meshId, path, request, pre: preconditionOf(request) });
  const headers = new Headers({ ETag: outcome.entry.etag });
  if (outcome.status === 204) return new Response(null, { status: 204, headers });
  headers.set("Content-Type", "application/json");
  return new Response(JSON.stringify({ file: toFileInfo(outcome.entry) }), { status: outcome.status, headers });
};

export const deleteFile: Handler = async (request, env, ctx) => {
  const path = queryPath(request);
  const existed = await files.deleteTree(env, ctx, request.meshId, path, preconditionOf(request));
  if (!existed) throw new HttpError("not_found", `Nothing exists at ${path}.`);
  return new Response(null, { status: 204 });
};

export const metadata: Handler = async (request, env, ctx) => {
  const raw = await bodyPath(request, readConfig(env).limits.jsonBody);
  const path = normalizeFilePath(raw);
  const entry = await files.fileMetadata(env, request.meshId, path);
  touchRead(env, ctx, request.meshId);
  if (entry === null) throw new HttpError("not_found", `No file at ${path}.`, { extra: { file: null } });
  return json({ file: toFileInfo(entry) });
};

export const listFiles: Handler = async (request, env, ctx) => {
  const folder = normalizePath(await bodyPath(request, readConfig(env).limits.jsonBody));
  const listed = await files.listFilesJson(env, request.meshId, folder);
  touchRead(env, ctx, request.meshId);
  return new Response(`{"files":${listed}}`, { headers: JSON_HEADERS });
};

export const listFolders: Handler = async (request, env, ctx) => {
  const folder = normalizePath(await bodyPath(request, readConfig(env).limits.jsonBody));
  const folders = await files.listFolders(env, request.meshId, folder);
  touchRead(env, ctx, request.meshId);
  return json({ folders });
};

/** Folders exist implicitly once something is written under them; the path is still validated. */
export const ensureFolder: Handler = async (request, env) => {
  normalizePath(await bodyPath(request, readConfig(env).limits.jsonBody));
  return new Response(null, { status: 204 });
};
