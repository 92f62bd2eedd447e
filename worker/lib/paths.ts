// Path rules of PROTOCOL.md section 2 and the path classes of section 3.
import { HttpError } from "./errors";

export const MAX_PATH_BYTES = 1024;

const encoder = new TextEncoder();
// C0 controls, DEL and C1 controls.
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Normalizes a client path: leading '/', repeated slashes collapsed, trailing slash dropped.
 * Refuses (400 invalid_path) '.' or '..' segments, control characters (NUL included),
 * backslashes, and anything longer than 1024 bytes. The root itself normalizes to '/'.
 */
export function normalizePath(raw: unknown): string {
  if (typeof raw !== "string") throw invalidPath("The path must be a string.");
  if (raw.length === 0) throw invalidPath("The path is empty.");
  if (raw.length * 3 > MAX_PATH_BYTES && encoder.encode(raw).byteLength > MAX_PATH_BYTES) {
    throw invalidPath(`The path is longer than ${MAX_PATH_BYTES} bytes.`);
  }
  if (CONTROL_CHARS.test(raw)) throw invalidPath("The path contains a control character.");
  if (raw.includes("\\")) throw invalidPath("The path contains a backslash.");
  const segments = raw.split("/").filter((s) => s !== "");
  for (const segment of segments) {
    if (segment === "." || segment === "..") {
      throw invalidPath("The path contains a '.' or '..' segment.");
    }
  }
  return "/" + segments.join("/");
}

/** Like normalizePath, but the mesh root itself is not a file. */
export function normalizeFilePath(raw: unknown): string {
  const path = normalizePath(raw);
  if (path === "/") throw invalidPath("The path names the mesh root, not a file.");
  return path;
}

function invalidPath(message: string): HttpError {
  return new HttpError("invalid_path", message);
}

/** Parent folder of a normalized path ('/' for top-level names and for '/'). */
export function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

/** Last segment of a normalized path. */
export function nameOf(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** The prefix that every descendant of a folder starts with. */
export function descendantPrefix(folder: string): string {
  return folder === "/" ? "/" : `${folder}/`;
}

export type PathClass =
  | "change"
  | "head"
  | "manifest"
  | "generation"
  | "snapshot"
  | "device"
  | "other";

/** Control objects live in the mesh hub's storage, not in R2 (DESIGN.md). */
export const CONTROL_CLASSES: ReadonlySet<PathClass> = new Set(["head", "manifest", "generation", "device"]);

export function isControlClass(cls: PathClass): boolean {
  return CONTROL_CLASSES.has(cls);
}

// The protocol's rule, as the upstream runtime applies it: `<anything>-chg_<anything>.json` in a
// folder named `changes`. The HLC text before `-chg_` differs between client versions (15-digit ms,
// 16 digits, ISO timestamps, opaque), so it is not parsed: a narrower pattern would treat another
// version's change files as overwritable "other" files (a retried flush would replace the first
// bytes, and a compacted file would vanish at once instead of staying readable for its grace).
const CHANGE_FILE = /^.+-chg_.+\.json$/;
const GENERATION_FILE = /^manifest-(\d{1,15})\.json$/;

/** Classifies a normalized path by its file name and parent folder name. */
export function classifyPath(path: string): PathClass {
  const name = nameOf(path);
  const parentName = nameOf(parentOf(path));
  if (parentName === "changes") {
    if (name === "head.json") return "head";
    if (CHANGE_FILE.test(name)) return "change";
  }
  if (name === "manifest.json") return "manifest";
  if (GENERATION_FILE.test(name)) return "generation";
  if (parentName === "mainline") return "snapshot";
  if (parentName === "devices") return "device";
  return "other";
}

/** Generation number named by a `manifest-<n>.json` path, or null. */
export function generationOf(path: string): number | null {
  const match = GENERATION_FILE.exec(nameOf(path));
  return match ? Number(match[1]) : null;
}

/** R2 refuses longer keys; the mesh id and a prefix share this budget with the path. */
export const MAX_R2_KEY_BYTES = 1024;

function r2Key(key: string): string {
  // A UTF-16 code unit is at most 3 UTF-8 bytes: short keys need no encoding to be measured.
  if (key.length * 3 > MAX_R2_KEY_BYTES && encoder.encode(key).byteLength > MAX_R2_KEY_BYTES) {
    throw invalidPath(
      `The path is too long for this mesh: mesh id and path together must stay within ${MAX_R2_KEY_BYTES - 3} bytes.`,
    );
  }
  return key;
}

/** R2 key of a sync object. The normalized path already starts with '/'. 400 when R2 could not hold it. */
export function objectKey(meshId: string, path: string): string {
  return r2Key(`m/${meshId}${path}`);
}

/** R2 key of a durable stored file. 400 when R2 could not hold it. */
export function storedFileKey(meshId: string, path: string): string {
  return r2Key(`f/${meshId}${path}`);
}

/** R2 key of a recovery wrapper (outside every mesh). */
export const RECOVERY_PREFIX = "r/";

export function recoveryKey(locator: string): string {
  return `${RECOVERY_PREFIX}${locator}`;
}
