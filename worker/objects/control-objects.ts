// Control objects (manifest pointer, generations, head.json, device records) live in the mesh's
// hub (DESIGN.md: R2 takes about one write per second per key). The hub applies the write rules
// atomically; then the D1 index is brought up to the hub's version. A failed index write fails the
// request (503): the client's retry is a no-op in the hub but re-upserts the index, repairing it.
import type { Env } from "../env";
import type { ControlClass, ControlRecord, HubDeletePrecondition } from "../../durable-objects/hub-api";
import { callHubIdempotent, meshHub, refusalToError } from "../hub-client";
import { readConfig } from "../lib/config";
import { payloadTooLarge, unavailable } from "../lib/errors";
import type { ObjectEntry, Precondition, WriteOutcome } from "./object-types";
import { tombstoneEntries, upsertEntry } from "./object-index";
import { writeTouchIntervalMs } from "./usage";
import { indexDbFor } from "../shards/mesh-index-db";

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

/**
 * Reads retry a transient hub failure (the runtime marks those `retryable`): the client treats
 * any failed GET of manifest.json as "no mesh here" and re-bootstraps, so reads must not flap.
 */

function indexFailure(meshId: string, err: unknown) {
  console.error(JSON.stringify({ level: "error", msg: "index write failed", mesh: meshId, error: String(err) }));
  return unavailable("The object index did not accept the write; retry.");
}

/** Writes through the hub's rules (CAS, max-register, overwrite), then the index. Throws 400/409/412/413/503. */
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
  const entry = controlEntry(result.record);
  try {
    await upsertEntry(indexDbFor(env, meshId), meshId, entry, writeTouchIntervalMs(config));
  } catch (err) {
    throw indexFailure(meshId, err);
  }
  return { status: result.status, changed: result.changed, entry };
}

/** Strongly consistent: served from the hub, bytes verbatim (the client re-hashes manifests). */
export async function readControlObject(
  env: Env,
  meshId: string,
  path: string,
): Promise<{ entry: ObjectEntry; body: Uint8Array } | null> {
  const found = await callHubIdempotent("read", () => meshHub(env, meshId).readControl(meshId, path));
  return found ? { entry: controlEntry(found.record), body: found.body } : null;
}

/**
 * Deletes the named control objects (hub, then index tombstones); returns what existed.
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
  if (result.deleted.length > 0) {
    try {
      await tombstoneEntries(indexDbFor(env, meshId), meshId, result.deleted.map((r) => r.path), result.at, result.version);
    } catch (err) {
      throw indexFailure(meshId, err);
    }
  }
  return result.deleted.map(controlEntry);
}

/** Every control object whose path starts with `prefix` (for index fills and reconcile). */
export async function listControlObjects(env: Env, meshId: string, prefix: string): Promise<ObjectEntry[]> {
  const records = await callHubIdempotent("list", () => meshHub(env, meshId).listControl(meshId, prefix));
  return records.map(controlEntry);
}
