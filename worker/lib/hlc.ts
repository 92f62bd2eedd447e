// The shape of an HLC text as the server accepts it in `changes/head.json`. Client versions write
// different HLC texts (15- or 16-digit ms, ISO timestamps, opaque), so only a sane outline is
// checked: printable ASCII, non-empty, bounded. That outline is what keeps the max-register from
// being frozen: a value such as "\uffff" or a lone surrogate sorts above every real HLC bytewise,
// so once stored, every later real head would answer 200 "kept".

/** Long enough for any HLC that fits in a change-file name (paths are at most 1,024 bytes). */
export const MAX_HLC_CHARS = 1024;

const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;

export function isSaneHlc(value: unknown): value is string {
  return typeof value === "string" && value.length <= MAX_HLC_CHARS && PRINTABLE_ASCII.test(value);
}
