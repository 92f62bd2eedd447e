// What both sides of a mesh archive agree on (docs/ARCHIVE.md): entry names, pax record keys,
// the opening and closing entries, and the chain digest that makes any change to the archive
// (a flipped body byte, a dropped or reordered entry) detectable at its end.
import type { ArchivedRoot, ArchivedSnapshot } from "../../durable-objects/hub-api";

export const ARCHIVE_FORMAT = "meshbox-archive";
export const ARCHIVE_VERSION = 1;

/** The first entry: what the archive is and the hub's committed roots and snapshots. */
export const HEADER_ENTRY = "meshbox-archive.json";
/** The last entry: counts and the chain digest over every entry before it. */
export const TRAILER_ENTRY = "meshbox-archive-end.json";

/** Entry name prefixes: control objects (hub), sync objects (R2 m/), stored files (R2 f/ and D1). */
export const CONTROL_PREFIX = "control";
export const OBJECT_PREFIX = "objects";
export const STORED_PREFIX = "stored";

/** pax record keys (vendor namespace "meshbox."). */
export const REC = {
  cls: "meshbox.class",
  modified: "meshbox.modified",
  sha256: "meshbox.sha256",
  state: "meshbox.state",
  contentType: "meshbox.content-type",
  etag: "meshbox.etag",
  stored: "meshbox.stored",
} as const;

export interface ArchiveHeader {
  format: typeof ARCHIVE_FORMAT;
  version: typeof ARCHIVE_VERSION;
  mesh: string;
  exportedAt: string;
  roots: ArchivedRoot[];
  snapshots: ArchivedSnapshot[];
}

export interface ArchiveTrailer {
  /** Entries between the header and the trailer. */
  entries: number;
  /** Body bytes of those entries. */
  bytes: number;
  /** Hex chain digest (see chainStep) over the header and every entry up to the trailer. */
  chain: string;
}

/** A stored file's D1 row as the archive carries it (the seal guard only as its hash). */
export interface ArchivedStoredFile {
  etag: string;
  contentType: string;
  uploadedBy: string;
  uploadedAt: number;
  modifiedAt: number;
  lastAccessedAt: number | null;
  useCount: number;
  plaintextSize: number | null;
  taint: string | null;
  sealHash: string | null;
}

/** `control/MyApp/manifest.json` for `/MyApp/manifest.json`. */
export function entryName(prefix: string, path: string): string {
  return `${prefix}${path}`;
}

export function hex(buffer: ArrayBuffer): string {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * One link of the chain: SHA-256 of (previous link, entry name, size, pax records, body SHA-256).
 * The body is hashed as it streams, so neither side ever holds a body to check it.
 */
export async function chainStep(
  previous: string,
  name: string,
  size: number,
  records: Record<string, string>,
  bodySha256: string,
): Promise<string> {
  const link = JSON.stringify([previous, name, size, records, bodySha256]);
  return hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(link)));
}

export const CHAIN_START = "0".repeat(64);
