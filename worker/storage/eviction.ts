// Idle-mesh eviction records. CONTRACT STUB: the operations issue implements this. After an idle
// mesh is cleaned up, `GET <root>/evicted.json` answers a record synthesized from D1 (never
// stored as an object); the file GET route asks here when an object is absent.
import type { Env } from "../env";

export async function readEvictionRecord(_env: Env, _meshId: string, _path: string): Promise<Uint8Array | null> {
  return null;
}
