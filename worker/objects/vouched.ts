// Change files a listing has just named as live, remembered per isolate for a short while, so the
// GETs a puller sends after a list-files (catch-up is a thousand of them in a row) skip the index
// check that runs beside every other GET. Safe because deleting a change file never hides it from
// GET at once: a deleted change file stays readable for DELETED_CHANGE_GRACE_MS (PROTOCOL.md
// section 3), so a name vouched for at T may be served until T + min(grace, VOUCH_MS) whatever
// happened after T; a body purged since is simply not found in R2. Only live change files are
// vouched for: every other class leaves GET at once when deleted, so it is always checked.
//
// A folder keeps only its newest listing, as the JSON text D1 returned. Most listings are a
// reconnect's (nothing new, no GET follows), so the text is parsed into a set of names only when
// the first GET asks: a listing itself costs one map entry, not a parse and a thousand insertions.
import { classifyPath, nameOf, parentOf } from "../lib/paths";
import type { FileInfo } from "./object-types";

/** How long a listing vouches for its names (never longer than the grace, see isVouched). */
const VOUCH_MS = 60_000;
/** Folders per isolate and their text in bytes (issue 12: every per-isolate map is bounded); oldest go first. */
const MAX_FOLDERS = 1_000;
const MAX_BYTES = 8 * 1024 * 1024;

/** What a listing said, as list-files built it: the wire's JSON array and its deleted names. */
export interface ListedText {
  /** JSON array of FileInfo, as D1 built it. */
  files: string;
  /** JSON array of the names among them that are deleted change files. */
  deleted: string;
}

interface Vouch {
  at: number;
  /** What this entry holds, in bytes of text (the set, once parsed, holds less). */
  bytes: number;
  listed: ListedText | null;
  names: Set<string> | null;
}

const vouches = new Map<string, Vouch>();
let heldBytes = 0;

function keyOf(meshId: string, folder: string): string {
  return `${meshId}\n${folder}`;
}

function forget(key: string): void {
  const old = vouches.get(key);
  if (old === undefined) return;
  heldBytes -= old.bytes;
  vouches.delete(key);
}

/** Records that a listing of `folder` taken at `at` said `listed`; a newer listing replaces it. */
export function vouchFor(meshId: string, folder: string, listed: ListedText, at: number): void {
  const key = keyOf(meshId, folder);
  forget(key);
  const bytes = listed.files.length + listed.deleted.length;
  // A listing too big for the bound vouches for nothing: its GETs are checked as before.
  if (bytes > MAX_BYTES) return;
  vouches.set(key, { at, bytes, listed: { files: listed.files, deleted: listed.deleted }, names: null });
  heldBytes += bytes;
  for (const oldest of vouches.keys()) {
    if (vouches.size <= MAX_FOLDERS && heldBytes <= MAX_BYTES) break;
    forget(oldest);
  }
}

/** The live change files a listing named. */
function liveChangeNames(listed: ListedText): Set<string> {
  const deleted = new Set(JSON.parse(listed.deleted) as string[]);
  const names = new Set<string>();
  for (const file of JSON.parse(listed.files) as FileInfo[]) {
    if (classifyPath(file.path) === "change" && !deleted.has(file.name)) names.add(file.name);
  }
  return names;
}

/** Whether a listing vouched for this change file recently enough to serve it without the index. */
export function isVouched(meshId: string, path: string, now: number, graceMs: number): boolean {
  const entry = vouches.get(keyOf(meshId, parentOf(path)));
  if (entry === undefined || now - entry.at >= Math.min(VOUCH_MS, graceMs)) return false;
  if (entry.names === null) {
    entry.names = liveChangeNames(entry.listed!);
    entry.listed = null;
  }
  return entry.names.has(nameOf(path));
}
