// Snapshots (`mainline/*`): bodies stream into R2, while the hub tracks candidate/committed
// state and leases (PROTOCOL.md section 3). CONTRACT STUB: the hub issue implements these.
import type { Env } from "../env";
import type { Precondition, WriteOutcome } from "./object-types";

/** Streams the request body into R2 under the hub's lease rules; 201/200/204, or throws 409/412/413. */
export async function putSnapshot(
  _env: Env,
  _meshId: string,
  _path: string,
  _request: Request,
  _pre: Precondition,
): Promise<WriteOutcome> {
  throw new Error("snapshots.putSnapshot: not implemented yet");
}

/** Throws 409 if any of the paths is the snapshot the committed manifest names. */
export async function assertSnapshotsDeletable(_env: Env, _meshId: string, _paths: readonly string[]): Promise<void> {
  throw new Error("snapshots.assertSnapshotsDeletable: not implemented yet");
}

/** Drops the hub's tracking of snapshots once their bodies are deleted. */
export async function forgetSnapshots(_env: Env, _meshId: string, _paths: readonly string[]): Promise<void> {
  throw new Error("snapshots.forgetSnapshots: not implemented yet");
}
