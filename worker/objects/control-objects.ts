// Control objects (manifest pointer, generations, head.json, device records) live in the mesh's
// hub (DESIGN.md: R2 takes about one write per second per key). The hub applies the write rules
// atomically and is their only record: listings and metadata ask the hub for them (files.ts, in
// parallel with the D1 query), so a control write is one hub round trip and no D1 statement.
import type { Env } from "../env";
import type { ControlClass, ControlRecord, HubDeletePrecondition } from "../../durable-objects/hub-api";
import { callHubIdempotent, meshHub, refusalToError } from "../hub-client";
import { readConfig } from "../lib/config";
import { payloadTooLarge } from "../lib/errors";
import { descendantPrefix, parentOf } from "../lib/paths";
import type { ObjectEntry, Precondition, WriteOutcome } from "./object-types";

export function controlEntry(record: ControlRecord): ObjectEntry {
  return {
    path: record.path,
    size: record.size,
    etag: record.etag,
    modifiedAt: record.modifiedAt,
    cls: record.cls,
    location: "hub",
    version: record.version,
  };
}

/** SQLite in a Durable Object stores at most 2 MB per value; a larger configured limit cannot apply. */
const HUB_VALUE_LIMIT = 2_000_000;

/** Writes through the hub's rules (CAS, max-register, overwrite). Throws 400/409/412/413/503. */
export async function putControlObject(
  env: Env,
  meshId: string,
  path: string,
  cls: ControlClass,
  body: Uint8Array,
  pre: Precondition,
): Promise<WriteOutcome> {
  const config = readConfig(env);
  const limit = Math.min(config.limits.control, HUB_VALUE_LIMIT);
  if (body.byteLength > limit) throw payloadTooLarge(limit, "control object");
  const result = await meshHub(env, meshId).putControl(meshId, path, cls, body, pre, config.candidateLeaseMs);
  if (!result.ok) throw refusalToError(result);
  return { status: result.status, changed: result.changed, entry: controlEntry(result.record) };
}

/**
 * Strongly consistent: served from the hub, bytes verbatim (the client re-hashes manifests).
 * Reads retry a transient hub failure (the runtime marks those `retryable`): the client treats
 * any failed GET of manifest.json as "no mesh here" and re-bootstraps, so reads must not flap.
 */
export async function readControlObject(
  env: Env,
  meshId: string,
  path: string,
): Promise<{ entry: ObjectEntry; body: Uint8Array } | null> {
  const found = await callHubIdempotent("read", () => meshHub(env, meshId).readControl(meshId, path));
  return found ? { entry: controlEntry(found.record), body: found.body } : null;
}

/**
 * Deletes the named control objects in the hub; returns what existed.
 * `precondition` (If-Match / If-None-Match) is checked in the hub against `precondition.path`.
 */
export async function deleteControlObjects(
  env: Env,
  meshId: string,
  paths: readonly string[],
  precondition?: HubDeletePrecondition,
): Promise<ObjectEntry[]> {
  if (paths.length === 0 && !precondition) return [];
  const result = await meshHub(env, meshId).deleteControl(meshId, [...paths], precondition);
  if (!result.ok) throw refusalToError(result);
  return result.deleted.map(controlEntry);
}

/** Every control object whose path starts with `prefix` (a string prefix, not a folder). */
export async function listControlObjects(env: Env, meshId: string, prefix: string): Promise<ObjectEntry[]> {
  const records = await callHubIdempotent("list", () => meshHub(env, meshId).listControl(meshId, prefix));
  return records.map(controlEntry);
}

/** The control objects at `path` or anywhere under `path/` (what a DELETE of `path` removes). */
export async function listControlSubtree(env: Env, meshId: string, path: string): Promise<ObjectEntry[]> {
  const below = descendantPrefix(path);
  const entries = await listControlObjects(env, meshId, path);
  return entries.filter((e) => e.path === path || e.path.startsWith(below));
}

/** What a folder's listing takes from the hub: its direct children, and the folders below it that hold control objects. */
export interface HubFolder {
  files: ObjectEntry[];
  folders: string[];
}

export async function controlFolder(env: Env, meshId: string, folder: string): Promise<HubFolder> {
  const below = descendantPrefix(folder);
  const entries = await listControlObjects(env, meshId, below);
  const files: ObjectEntry[] = [];
  const folders = new Set<string>();
  for (const entry of entries) {
    if (parentOf(entry.path) === folder) files.push(entry);
    else folders.add(entry.path.slice(below.length).split("/", 1)[0]!);
  }
  folders.delete("");
  return { files, folders: [...folders] };
}

/** One control object's entry without its body (metadata), or null. */
export async function controlMetadata(env: Env, meshId: string, path: string): Promise<ObjectEntry | null> {
  const entries = await listControlObjects(env, meshId, path);
  return entries.find((e) => e.path === path) ?? null;
}
