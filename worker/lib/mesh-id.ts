// Mesh id validation (PROTOCOL.md section 2), done before anything else on a request; optional
// checksummed ids; and the mesh patterns that API keys and sessions are scoped to.
import { HttpError } from "./errors";
import { base64UrlEncode, constantTimeEqual, hmacSha256 } from "./secrets";

const MESH_ID = /^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$/;
const MESH_PREFIX = /^[A-Za-z0-9][A-Za-z0-9._~-]{0,126}$/;

/** `<uuid>.<tag>`: the tag is 8 bytes of HMAC, 11 base64url characters. */
const CHECKSUMMED = /^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\.([A-Za-z0-9_-]{11})$/;

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

/** First 8 bytes of HMAC-SHA256(secret, uuid), base64url. */
export async function checksumTag(secret: string, uuid: string): Promise<string> {
  return base64UrlEncode((await hmacSha256(secret, uuid)).subarray(0, 8));
}

/** A fresh `<uuid>.<tag>` id that a deployment with the same secret accepts. */
export async function issueChecksummedMeshId(secret: string): Promise<string> {
  const uuid = crypto.randomUUID();
  return `${uuid}.${await checksumTag(secret, uuid)}`;
}

export interface ChecksumPolicy {
  /** MESH_ID_CHECKSUM_SECRET, or undefined when not configured. */
  secret: string | undefined;
  /** REQUIRE_CHECKSUMMED_MESH_IDS=1. */
  required: boolean;
}

/**
 * Checks a syntactically valid mesh id against the deployment's checksum policy. Without a
 * secret the `<uuid>.<tag>` form is just a plain name. With one, an id of that form must carry
 * the right tag (so a typo is caught rather than silently creating a new mesh), and when ids are
 * required to be checksummed nothing else is accepted.
 */
export async function checkMeshIdChecksum(meshId: string, policy: ChecksumPolicy): Promise<string> {
  const secret = policy.secret !== undefined && policy.secret !== "" ? policy.secret : null;
  if (secret === null) {
    if (policy.required) {
      throw new HttpError(
        "auth_not_configured",
        "REQUIRE_CHECKSUMMED_MESH_IDS=1 needs MESH_ID_CHECKSUM_SECRET: set it with `wrangler secret put MESH_ID_CHECKSUM_SECRET`.",
      );
    }
    return meshId;
  }
  const match = CHECKSUMMED.exec(meshId);
  if (match === null) {
    if (policy.required) {
      throw new HttpError(
        "invalid_mesh_id",
        "This deployment accepts only checksummed mesh ids (<uuid>.<tag>) issued by its operator.",
      );
    }
    return meshId;
  }
  const expected = await checksumTag(secret, match[1] as string);
  if (!constantTimeEqual(match[2] as string, expected)) {
    throw new HttpError("invalid_mesh_id", "The mesh id's checksum does not match; check the id for typos.");
  }
  return meshId;
}

/** An exact mesh id, "*" (every mesh), or a prefix ending in "*". */
export function isValidMeshPattern(value: unknown): value is string {
  if (typeof value !== "string") return false;
  if (value === "*") return true;
  if (value.endsWith("*")) return MESH_PREFIX.test(value.slice(0, -1));
  return MESH_ID.test(value);
}

export function meshPatternCovers(pattern: string, meshId: string): boolean {
  if (pattern === "*") return true;
  if (pattern.endsWith("*")) return meshId.startsWith(pattern.slice(0, -1));
  return pattern === meshId;
}

/** True when every mesh `inner` names is also named by `outer` (a narrowing, never a widening). */
export function meshPatternWithin(inner: string, outer: string): boolean {
  if (outer === "*") return true;
  if (inner === "*") return false;
  if (!outer.endsWith("*")) return inner === outer;
  const prefix = outer.slice(0, -1);
  return (inner.endsWith("*") ? inner.slice(0, -1) : inner).startsWith(prefix);
}

/** True when some mesh id is named by both patterns (for one pattern to list another's sessions). */
export function meshPatternsOverlap(a: string, b: string): boolean {
  return meshPatternWithin(a, b) || meshPatternWithin(b, a);
}

/** The exact mesh a pattern names, or null for "*" and prefixes. */
export function exactMeshOf(pattern: string): string | null {
  return pattern.includes("*") ? null : pattern;
}
