// Control objects (manifest pointer, generations, head.json, device records) live in the mesh's
// hub (DESIGN.md: R2 takes about one write per second per key). CONTRACT STUB: the hub issue
// implements these; the core data plane's file routes call them by path class.
import type { Env } from "../env";
import type { ControlClass } from "../../durable-objects/hub-api";
import type { ObjectEntry, Precondition, WriteOutcome } from "./object-types";

/** Writes through the hub's rules (CAS, max-register, overwrite), then the index. Throws 409/412. */
export async function putControlObject(
  _env: Env,
  _meshId: string,
  _path: string,
  _cls: ControlClass,
  _body: Uint8Array,
  _pre: Precondition,
): Promise<WriteOutcome> {
  throw new Error("control-objects.putControlObject: not implemented yet");
}

export async function readControlObject(
  _env: Env,
  _meshId: string,
  _path: string,
): Promise<{ entry: ObjectEntry; body: Uint8Array } | null> {
  throw new Error("control-objects.readControlObject: not implemented yet");
}

/** Deletes the named control objects (hub, then index tombstones); returns what existed. */
export async function deleteControlObjects(
  _env: Env,
  _meshId: string,
  _paths: readonly string[],
): Promise<ObjectEntry[]> {
  throw new Error("control-objects.deleteControlObjects: not implemented yet");
}

/** Every control object whose path starts with `prefix` (for index fills and reconcile). */
export async function listControlObjects(_env: Env, _meshId: string, _prefix: string): Promise<ObjectEntry[]> {
  throw new Error("control-objects.listControlObjects: not implemented yet");
}
