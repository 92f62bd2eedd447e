// A small streaming tar codec (POSIX ustar with pax extended headers), enough for mesh archives
// (docs/ARCHIVE.md). Written here rather than taken from a package: the npm tar libraries are
// Node-stream based and would pull Node polyfills into the Worker, while this needs only Web
// Streams and two header layouts. Both directions stream: a writer emits a header then pipes the
// body, a reader hands each entry's body out chunk by chunk and never holds a whole entry.
import { badRequest } from "./errors";

export const BLOCK = 512;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** One entry as the archive describes it: its name, size, and its pax records (meshbox.* keys). */
export interface TarEntryHeader {
  name: string;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** pax records other than path and size. */
  records: Record<string, string>;
}

// ---- writing ----

function writeString(block: Uint8Array, offset: number, length: number, value: string): void {
  const bytes = encoder.encode(value);
  block.set(bytes.subarray(0, length), offset);
}

function writeOctal(block: Uint8Array, offset: number, length: number, value: number): void {
  // length - 1 digits and a NUL, as ustar wants.
  writeString(block, offset, length, value.toString(8).padStart(length - 1, "0") + "\0");
}

function checksumOf(block: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return sum;
}

function ustarHeader(name: string, size: number, mtime: number, type: "0" | "x"): Uint8Array {
  const block = new Uint8Array(BLOCK);
  // The real name travels in the pax header; this is a readable ASCII fallback of at most 100 bytes.
  writeString(block, 0, 100, name.replace(/[^\x20-\x7e]/g, "_").slice(0, 99));
  writeOctal(block, 100, 8, 0o644);
  writeOctal(block, 108, 8, 0);
  writeOctal(block, 116, 8, 0);
  writeOctal(block, 124, 12, size);
  writeOctal(block, 136, 12, Math.max(0, Math.floor(mtime)));
  writeString(block, 156, 1, type);
  writeString(block, 257, 6, "ustar\0");
  writeString(block, 263, 2, "00");
  writeString(block, 265, 32, "meshbox");
  writeString(block, 297, 32, "meshbox");
  const sum = checksumOf(block);
  writeString(block, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return block;
}

/** One pax record: "<len> <key>=<value>\n", where len counts the whole record, its own digits included. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLength = encoder.encode(body).byteLength;
  const digits = String(bodyLength).length;
  let length = bodyLength + digits;
  if (String(length).length > digits) length = bodyLength + String(length).length;
  return `${length}${body}`;
}

export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** The header blocks of one entry: a pax header (full path, meshbox records) then the ustar header. */
export function entryHeader(entry: TarEntryHeader): Uint8Array {
  let pax = paxRecord("path", entry.name) + paxRecord("size", String(entry.size));
  for (const [key, value] of Object.entries(entry.records)) pax += paxRecord(key, value);
  const paxBytes = encoder.encode(pax);
  const out = new Uint8Array(BLOCK + paxBytes.byteLength + padding(paxBytes.byteLength) + BLOCK);
  out.set(ustarHeader(`PaxHeaders/${entry.name}`, paxBytes.byteLength, entry.mtime, "x"), 0);
  out.set(paxBytes, BLOCK);
  out.set(ustarHeader(entry.name.replace(/^\/+/, ""), entry.size, entry.mtime, "0"), out.byteLength - BLOCK);
  return out;
}

/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE = new Uint8Array(2 * BLOCK);

// ---- reading ----

function readOctal(block: Uint8Array, offset: number, length: number, what: string): number {
  const text = new TextDecoder().decode(block.subarray(offset, offset + length)).replace(/[\0 ]+$/, "").replace(/^ +/, "");
  if (!/^[0-7]{1,12}$/.test(text)) throw corrupt(`the ${what} field of a header is not an octal number`);
  return parseInt(text, 8);
}

function corrupt(detail: string) {
  return badRequest(`The archive is corrupt: ${detail}.`);
}

function parsePax(bytes: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < bytes.byteLength) {
    const space = bytes.indexOf(0x20, at);
    if (space === -1) throw corrupt("a pax record has no length");
    const length = Number(new TextDecoder().decode(bytes.subarray(at, space)));
    if (!Number.isSafeInteger(length) || length <= space - at + 1 || at + length > bytes.byteLength) {
      throw corrupt("a pax record has a bad length");
    }
    if (bytes[at + length - 1] !== 0x0a) throw corrupt("a pax record does not end in a newline");
    let record: string;
    try {
      record = decoder.decode(bytes.subarray(space + 1, at + length - 1));
    } catch {
      throw corrupt("a pax record is not UTF-8");
    }
    const eq = record.indexOf("=");
    if (eq <= 0) throw corrupt("a pax record has no key");
    out[record.slice(0, eq)] = record.slice(eq + 1);
    at += length;
  }
  return out;
}

/**
 * Reads exact byte counts from a stream, holding at most one chunk beyond what was asked for.
 * `seen` counts every byte handed out, so callers can tell where in the archive they are.
 */
export class ByteReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #held: Uint8Array = new Uint8Array(0);
  #onBytes: (bytes: Uint8Array) => void;

  constructor(stream: ReadableStream<Uint8Array>, onBytes: (bytes: Uint8Array) => void = () => undefined) {
    this.#reader = stream.getReader();
    this.#onBytes = onBytes;
  }

  async #fill(): Promise<boolean> {
    let next: ReadableStreamReadResult<Uint8Array>;
    try {
      next = await this.#reader.read();
    } catch {
      throw badRequest("The archive could not be read to its end.");
    }
    if (next.done) return false;
    this.#held = this.#held.byteLength === 0 ? next.value : concat(this.#held, next.value);
    return true;
  }

  /** Exactly `n` bytes, or null at a clean end of stream before the first byte; a short read is corrupt. */
  async exact(n: number): Promise<Uint8Array | null> {
    while (this.#held.byteLength < n) {
      if (!(await this.#fill())) {
        if (this.#held.byteLength === 0) return null;
        throw corrupt("it ends in the middle of an entry (truncated)");
      }
    }
    const out = this.#held.slice(0, n);
    this.#held = this.#held.subarray(n);
    this.#onBytes(out);
    return out;
  }

  /** Hands out the next `n` bytes in pieces as they arrive. */
  async *chunks(n: number): AsyncGenerator<Uint8Array> {
    let left = n;
    while (left > 0) {
      if (this.#held.byteLength === 0 && !(await this.#fill())) throw corrupt("it ends in the middle of an entry (truncated)");
      const piece = this.#held.subarray(0, Math.min(left, this.#held.byteLength));
      this.#held = this.#held.subarray(piece.byteLength);
      left -= piece.byteLength;
      this.#onBytes(piece);
      yield piece;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.chunks(n)) void _;
  }

  /** True when nothing but zero bytes (or nothing) remains: what may follow the end-of-archive blocks. */
  async drainZeros(): Promise<boolean> {
    for (;;) {
      if (this.#held.some((b) => b !== 0)) return false;
      this.#held = new Uint8Array(0);
      if (!(await this.#fill())) return true;
    }
  }

  cancel(): Promise<void> {
    return this.#reader.cancel().catch(() => undefined);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a, 0);
  out.set(b, a.byteLength);
  return out;
}

/** Largest pax header accepted (a path of 1 KiB and a few records need far less). */
const MAX_PAX_BYTES = 64 * 1024;

/**
 * The next entry's header (after its pax header), or null at the end-of-archive blocks. Every
 * header's checksum is verified; only regular files with a pax header are meshbox entries.
 */
export async function readEntryHeader(reader: ByteReader): Promise<TarEntryHeader | null> {
  const paxBlock = await reader.exact(BLOCK);
  if (paxBlock === null) throw corrupt("it ends without the end-of-archive blocks (truncated)");
  if (paxBlock.every((b) => b === 0)) {
    const second = await reader.exact(BLOCK);
    if (second === null || second.some((b) => b !== 0)) throw corrupt("the end-of-archive marker is incomplete");
    return null;
  }
  const pax = verifiedHeader(paxBlock);
  if (pax.type !== "x") throw corrupt(`an entry has type '${pax.type}' where a pax header was expected`);
  if (pax.size > MAX_PAX_BYTES) throw corrupt("a pax header is too large");
  const paxBytes = await reader.exact(pax.size + padding(pax.size));
  if (paxBytes === null) throw corrupt("it ends inside a pax header (truncated)");
  const records = parsePax(paxBytes.subarray(0, pax.size));
  const fileBlock = await reader.exact(BLOCK);
  if (fileBlock === null) throw corrupt("it ends after a pax header (truncated)");
  const file = verifiedHeader(fileBlock);
  if (file.type !== "0") throw corrupt(`an entry has type '${file.type}'; only regular files belong in a mesh archive`);
  const { path: name, size: paxSize, ...rest } = records;
  if (name === undefined || name === "") throw corrupt("an entry has no pax path");
  if (paxSize !== undefined && Number(paxSize) !== file.size) throw corrupt(`the sizes of ${name} disagree`);
  return { name, size: file.size, mtime: file.mtime, records: rest };
}

function verifiedHeader(block: Uint8Array): { type: string; size: number; mtime: number } {
  const stored = readOctal(block, 148, 8, "checksum");
  if (stored !== checksumOf(block)) throw corrupt("a header checksum does not match");
  if (new TextDecoder().decode(block.subarray(257, 262)) !== "ustar") throw corrupt("a header is not ustar");
  return {
    type: String.fromCharCode(block[156]!),
    size: readOctal(block, 124, 12, "size"),
    mtime: readOctal(block, 136, 12, "mtime"),
  };
}
