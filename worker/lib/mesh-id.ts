// Mesh id validation (PROTOCOL.md section 2), done before anything else on a request.
import { HttpError } from "./errors";

const MESH_ID = /^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$/;

export function isValidMeshId(value: unknown): value is string {
  return typeof value === "string" && MESH_ID.test(value);
}

export function validateMeshId(value: unknown): string {
  if (!isValidMeshId(value)) {
    throw new HttpError(
      "invalid_mesh_id",
      "The mesh id must be 1-128 characters of [A-Za-z0-9._~-] starting with a letter or digit.",
    );
  }
  return value;
}
