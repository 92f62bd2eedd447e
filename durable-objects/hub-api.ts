// The typed contract between the Worker and the MeshHub Durable Object: types, plus the two
// header names of the WebSocket upgrade hand-off.
// The hub never imports routes or storage; both sides import this file and lib/.
import type { PathClass } from "../worker/lib/paths";

/** Path classes whose objects the hub stores in its own SQLite storage. */
export type ControlClass = "head" | "manifest" | "generation" | "device";

/** A control object's metadata as the hub holds it. */
export interface ControlRecord {
  path: string;
  cls: ControlClass;
  size: number;
  /** Quoted opaque string. */
  etag: string;
  /** Epoch ms. */
  modifiedAt: number;
  /** Per-mesh write version, strictly increasing across all of the hub's writes and deletes. */
  version: number;
}

export interface HubPrecondition {
  ifMatch?: string;
  ifNoneMatch?: string;
}

/**
 * Refusals cross the RPC boundary as values (a thrown error would arrive as a plain Error and
 * lose its status); the Worker turns them into HttpErrors.
 */
export interface HubRefusal {
  ok: false;
  code: "conflict" | "precondition_failed" | "bad_request" | "invalid_body" | "not_found";
  message: string;
}

export type HubResult<T> = ({ ok: true } & T) | HubRefusal;

/** One invalidation the Worker asks the hub to push once a write is durable. */
export interface InvalidationEvent {
  op: "write" | "delete";
  path: string;
  pathType: PathClass;
  /** Bytes written, for the hourly counters only (never part of a frame). */
  bytes?: number;
  /** When the write was acknowledged (epoch ms), when it reaches the hub later than that (a batch). */
  at?: number;
}

/** The hub's answer to a notify: whether any socket is open (if not, the Worker may hold the mesh's next writes, see worker/objects/push.ts). */
export interface NotifyAnswer {
  listening: boolean;
}

/** One hour of a mesh's writes (hour = epoch ms / 3 600 000, floored). */
export interface HourlyCount {
  hour: number;
  writes: number;
  bytes: number;
}

/** The frame sent to subscribers (PROTOCOL.md section 6). */
export interface InvalidationFrame {
  type: "invalidation";
  op: "write" | "delete";
  path: string;
  pathType: PathClass;
  ts: number;
  seq: number;
  /** Every path coalesced into this frame, when more than one. */
  paths?: string[];
}

/** What the WebSocket attachment remembers about who opened the socket. */
export interface SocketAttachment {
  /** Session id (JWT jti), or null for mesh-bearer/open connections. */
  sessionId: string | null;
  /** Epoch ms after which the socket is closed (4401), or null for no expiry. */
  expiresAt: number | null;
  connectedAt: number;
}

export interface HubHealth {
  ok: true;
  mesh: string;
  connected: number;
  pendingFrames: number;
  seq: number;
}

/** A control write the hub accepted: 201 created, 200 identical/no-op repeat, 204 overwrite. */
export interface ControlWrite {
  status: 200 | 201 | 204;
  /** False for a no-op repeat (nothing stored, no push). */
  changed: boolean;
  record: ControlRecord;
}

export interface ControlBody {
  record: ControlRecord;
  body: Uint8Array;
}

/** What a delete removed, stamped with the one version and time the index tombstones carry. */
export interface ControlDeletion {
  deleted: ControlRecord[];
  version: number;
  at: number;
}

/** A precondition on one path of a (recursive) delete. */
export interface HubDeletePrecondition extends HubPrecondition {
  path: string;
}

/**
 * Opening a snapshot PUT. The owner holds the candidate's lease and streams the body into R2;
 * anyone else only hashes the body and asks the hub whether it is identical (200) or not (409).
 */
export type SnapshotOpening =
  | { role: "owner"; token: string; status: 201 | 204 }
  | { role: "compare" };

/** A snapshot's tracked state, as the index needs it. */
export interface SnapshotRecord {
  path: string;
  state: "candidate" | "committed";
  size: number;
  /** Quoted R2 etag of the stored body. */
  etag: string;
  sha256: string;
  modifiedAt: number;
}

/** Answer to "are my bytes the candidate's?": yes, or the owner is still uploading. */
export type SnapshotComparison = { settled: true; record: SnapshotRecord } | { settled: false };

export interface HubStats {
  connected: number;
  seq: number;
  /** Highest committed generation over the mesh's roots, or null before the first commit. */
  currentGeneration: number | null;
  controlObjects: number;
  controlBytes: number;
}

export interface HubWipe {
  controlObjects: number;
  snapshots: number;
  closedSockets: number;
}

/** Headers the Worker adds when it forwards an authorized WebSocket upgrade to the hub. */
export const HUB_MESH_HEADER = "X-Meshbox-Mesh";
export const HUB_ATTACHMENT_HEADER = "X-Meshbox-Socket";

/** A control object as an archive carries it: bytes verbatim, with the commit state of a generation. */
export interface ArchivedControl {
  path: string;
  cls: ControlClass;
  body: Uint8Array;
  /** Hex SHA-256 of body. */
  sha256: string;
  modifiedAt: number;
  /** "committed" for a committed generation, null for every other class (candidates are never archived). */
  state: "committed" | null;
}

/** What one root's pointer committed. */
export interface ArchivedRoot {
  root: string;
  generation: number;
  snapshotPath: string | null;
}

/** A committed snapshot as the ledger tracks it (its body is an R2 sync object). */
export interface ArchivedSnapshot {
  path: string;
  sha256: string;
  size: number;
  /** Quoted R2 etag of the stored body. */
  etag: string;
  modifiedAt: number;
}

/** The hub's committed state, read in one atomic step for an export or installed by an import. */
export interface HubArchive {
  control: ArchivedControl[];
  roots: ArchivedRoot[];
  snapshots: ArchivedSnapshot[];
  /** Snapshot paths the ledger knows as not committed (candidates, deleted): their bodies are not exported. */
  uncommitted: string[];
}
