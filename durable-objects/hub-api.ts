// The typed contract between the Worker and the MeshHub Durable Object (types only).
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
  code: "conflict" | "precondition_failed" | "bad_request" | "not_found";
  message: string;
}

export type HubResult<T> = ({ ok: true } & T) | HubRefusal;

/** One invalidation the Worker asks the hub to push once a write is durable. */
export interface InvalidationEvent {
  op: "write" | "delete";
  path: string;
  pathType: PathClass;
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
