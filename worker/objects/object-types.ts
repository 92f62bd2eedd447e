// Shapes shared by the storage modules (R2 objects, the D1 index, the hub's control objects).
import type { PathClass } from "../lib/paths";

/** Where an object's body lives. */
export type ObjectLocation = "r2" | "hub";

/** One object as the index holds it, and as listings and metadata describe it. */
export interface ObjectEntry {
  path: string;
  size: number;
  /** Quoted opaque string, exactly as sent in the ETag header. */
  etag: string;
  /** Epoch ms. */
  modifiedAt: number;
  cls: PathClass;
  location: ObjectLocation;
  /** Hub write version for control objects (index writes never go backwards); 0 for R2 objects. */
  version: number;
}

/** Optional strict-CAS preconditions (PROTOCOL.md section 3). */
export interface Precondition {
  ifMatch?: string;
  ifNoneMatch?: string;
}

/** Result of a successful write: 201 created, 200 identical/idempotent repeat, 204 overwrite. */
export interface WriteOutcome {
  status: 200 | 201 | 204;
  /** False for a no-op repeat: no push is sent. */
  changed: boolean;
  entry: ObjectEntry;
}

/** The wire shape of a file in listings and metadata. */
export interface FileInfo {
  name: string;
  path: string;
  size: number;
  modifiedTime: string;
  etag: string;
}

export function toFileInfo(entry: ObjectEntry): FileInfo {
  return {
    name: entry.path.slice(entry.path.lastIndexOf("/") + 1),
    path: entry.path,
    size: entry.size,
    modifiedTime: new Date(entry.modifiedAt).toISOString(),
    etag: entry.etag,
  };
}
