// D1 read-through index of a mesh's objects. CONTRACT STUB: the core data plane issue implements
// these; the hub-backed storage modules call upsertEntry/tombstoneEntries after every hub write.
import type { ObjectEntry } from "./object-types";

/** Inserts or replaces a live entry (clears any tombstone). Never moves a hub entry to an older version. */
export async function upsertEntry(_db: D1Database, _meshId: string, _entry: ObjectEntry): Promise<void> {
  throw new Error("object-index.upsertEntry: not implemented yet");
}

/** Marks entries deleted at `at` (epoch ms); `version` guards hub entries against reordering. */
export async function tombstoneEntries(
  _db: D1Database,
  _meshId: string,
  _paths: readonly string[],
  _at: number,
  _version = 0,
): Promise<void> {
  throw new Error("object-index.tombstoneEntries: not implemented yet");
}
