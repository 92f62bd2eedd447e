// Change files a listing has just named as live, remembered per isolate for a short while, so the
// GETs a puller sends after a list-files (catch-up is a thousand of them in a row) skip the index
// check that runs beside every other GET. Safe because deleting a change file never hides it from
// GET at once: a deleted change file stays readable for DELETED_CHANGE_GRACE_MS (PROTOCOL.md
// section 3), so a name vouched for at T may be served until T + min(grace, VOUCH_MS) whatever
// happened after T; a body purged since is simply not found in R2. Only live change files are
// vouched for: every other class leaves GET at once when deleted, so it is always checked.

/** How long a listing vouches for its names (never longer than the grace, see vouchedFor). */
const VOUCH_MS = 60_000;
/** Entries per isolate (issue 12: every per-isolate map is bounded by count); oldest go first. */
const MAX_VOUCHED = 20_000;

const vouched = new Map<string, number>();

function keyOf(meshId: string, path: string): string {
  return `${meshId}\n${path}`;
}

/** Records that a listing of `folder` taken at `at` named these live change files. */
export function vouchFor(meshId: string, folder: string, names: readonly string[], at: number): void {
  const prefix = folder === "/" ? "/" : `${folder}/`;
  for (const name of names) {
    const key = keyOf(meshId, prefix + name);
    vouched.delete(key);
    vouched.set(key, at);
  }
  for (const oldest of vouched.keys()) {
    if (vouched.size <= MAX_VOUCHED) break;
    vouched.delete(oldest);
  }
}

/** Whether a listing vouched for this change file recently enough to serve it without the index. */
export function isVouched(meshId: string, path: string, now: number, graceMs: number): boolean {
  const at = vouched.get(keyOf(meshId, path));
  return at !== undefined && now - at < Math.min(VOUCH_MS, graceMs);
}
