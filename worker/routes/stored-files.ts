// Durable stored files (PROTOCOL.md section 4): parse and validate the headers, call one storage
// function, shape the response. Stored-file operations never push.
import type { Handler, MeshRequest } from "../request-context";
import { HttpError, badRequest } from "../lib/errors";
import { readConfig } from "../lib/config";
import { readJsonObject } from "../lib/body";
import { normalizeFilePath } from "../lib/paths";
import * as stored from "../objects/stored-files";
import { touchRead } from "../objects/usage";

const MAX_HEADER_CHARS = 1024;
const SEAL_GUARD = /^[0-9a-fA-F]{64}$/;

function queryPath(request: MeshRequest): string {
  const values = new URL(request.url).searchParams.getAll("path");
  if (values.length !== 1) throw badRequest("Give exactly one `path` query parameter.");
  return normalizeFilePath(values[0]);
}

function optionalHeader(request: Request, name: string): string | null {
  const value = request.headers.get(name);
  if (value !== null && value.length > MAX_HEADER_CHARS) throw badRequest(`${name} is longer than ${MAX_HEADER_CHARS} characters.`);
  return value;
}

function sealGuardOf(request: Request): string | null {
  const guard = request.headers.get("X-Interocitor-Seal-Guard");
  if (guard === null) return null;
  if (!SEAL_GUARD.test(guard.trim())) throw badRequest("X-Interocitor-Seal-Guard must be 64 hex characters.");
  return guard.trim().toLowerCase();
}

/**
 * The client states the plaintext size as a byte count. A present value that is not a
 * non-negative safe integer is refused: storing it as null would silently lose what the client
 * meant to record. A blank header states nothing and reads as absent (like a blank If-Match).
 */
function plaintextSizeOf(request: Request): number | null {
  const raw = optionalHeader(request, "X-Interocitor-Plaintext-Size")?.trim() ?? "";
  if (raw === "") return null;
  const size = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(size)) {
    throw badRequest("X-Interocitor-Plaintext-Size must be a non-negative integer byte count (at most 2^53 - 1).");
  }
  return size;
}

function uploadOf(request: Request): stored.StoredFileUpload {
  const deviceId = optionalHeader(request, "X-Interocitor-Device-Id")?.trim() ?? "";
  if (deviceId === "") throw badRequest("X-Interocitor-Device-Id is required and must not be blank.");
  const plaintextSize = plaintextSizeOf(request);
  const contentType = optionalHeader(request, "Content-Type")?.trim() || "application/octet-stream";
  return {
    contentType,
    deviceId,
    plaintextSize,
    taint: optionalHeader(request, "X-Interocitor-Taint"),
    sealGuard: sealGuardOf(request),
  };
}

function json(body: unknown, status: number): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

export const putStoredFile: Handler = async (request, env) => {
  const path = queryPath(request);
  const upload = uploadOf(request);
  const { status, file } = await stored.putStoredFile(env, request.meshId, path, request, upload);
  return json({ file }, status);
};

/** GET with the body and a counted read; HEAD with the same headers from metadata alone. */
export const getStoredFile: Handler = async (request, env, ctx) => {
  const path = queryPath(request);
  const found =
    request.isHead === true
      ? await stored.statStoredFile(env, request.meshId, path)
      : await stored.readStoredFile(env, request.meshId, path);
  touchRead(env, ctx, request.meshId);
  if (found === null) throw new HttpError("not_found", `No stored file at ${path}.`);
  const { file } = found;
  return new Response("body" in found ? (found.body as ReadableStream<Uint8Array>) : null, {
    status: 200,
    headers: {
      "Content-Type": file.contentType,
      "Content-Length": String(found.size),
      ETag: found.etag,
      "Last-Modified": new Date(file.modifiedTime).toUTCString(),
      "Cache-Control": "no-store",
    },
  });
};

export const deleteStoredFile: Handler = async (request, env) => {
  const path = queryPath(request);
  const deleted = await stored.deleteStoredFile(env, request.meshId, path, sealGuardOf(request));
  if (!deleted) throw new HttpError("not_found", `No stored file at ${path}.`);
  return new Response(null, { status: 204 });
};

export const storedFileMetadata: Handler = async (request, env) => {
  const body = await readJsonObject(request, readConfig(env).limits.jsonBody);
  if (typeof body.path !== "string") throw badRequest("The body must be a JSON object with a string `path`.");
  const path = normalizeFilePath(body.path);
  const file = await stored.storedFileMetadata(env, request.meshId, path);
  if (file === null) throw new HttpError("not_found", `No stored file at ${path}.`, { extra: { file: null } });
  return json({ file }, 200);
};
