// Idle-mesh eviction records. After an idle mesh is cleaned up, `GET <root>/evicted.json` answers
// a record synthesized from D1 (mesh_usage.evicted_at / evicted_roots), never stored as an
// object, so it costs nothing and disappears by itself once the mesh is written again. The file
// GET route asks here when an object is absent.
import type { Env } from "../env";
import { nameOf, parentOf } from "../lib/paths";
import { indexDbFor } from "../shards/mesh-index-db";

export const EVICTION_RECORD_NAME = "evicted.json";

export interface EvictionRecord {
  evicted: true;
  reason: "idle";
  mesh: string;
  root: string;
  /** ISO-8601. */
  evictedAt: string;
  lastWriteAt: string | null;
  message: string;
}

/** Builds the record for `<root>/evicted.json`, or null when the mesh (or that root) was not evicted. */
export async function findEvictionRecord(db: D1Database, meshId: string, path: string): Promise<EvictionRecord | null> {
  if (nameOf(path) !== EVICTION_RECORD_NAME) return null;
  const root = parentOf(path);
  const row = await db
    .prepare(`SELECT evicted_at, evicted_roots, last_write_at FROM mesh_usage WHERE mesh = ?1`)
    .bind(meshId)
    .first<{ evicted_at: number | null; evicted_roots: string | null; last_write_at: number | null }>();
  if (!row || row.evicted_at === null) return null;
  // A write after the eviction means the mesh lives again: the record no longer describes it.
  if (row.last_write_at !== null && row.last_write_at > row.evicted_at) return null;
  if (root !== "/" && !parseRoots(row.evicted_roots).includes(root)) return null;
  return {
    evicted: true,
    reason: "idle",
    mesh: meshId,
    root,
    evictedAt: new Date(row.evicted_at).toISOString(),
    lastWriteAt: row.last_write_at === null ? null : new Date(row.last_write_at).toISOString(),
    message:
      "This mesh was removed by the server after a long time without writes; its data is gone. " +
      "A device that still holds the data can publish it again.",
  };
}

export async function readEvictionRecord(env: Env, meshId: string, path: string): Promise<Uint8Array | null> {
  const record = await findEvictionRecord(indexDbFor(env, meshId), meshId, path);
  return record === null ? null : new TextEncoder().encode(JSON.stringify(record, null, 2));
}

/** Parses mesh_usage.evicted_roots; a malformed value reads as no roots rather than failing stats. */
export function parseRoots(raw: string | null): string[] {
  if (raw === null) return [];
  try {
    const value: unknown = JSON.parse(raw);
    return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
  } catch {
    return [];
  }
}
