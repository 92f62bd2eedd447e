// Factories for the admin and maintenance tests: the worker's default export called with a copy
// of the test env (real R2/D1/DO bindings) that has an admin token, and small seeding helpers.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import worker from "../../worker/index";
import type { Env } from "../../worker/env";

export const ADMIN_TOKEN = "ops-admin-token-0123456789abcdef";
export const SIGNING_KEY = "ops-signing-key-0123456789abcdef-current";

/** Open access stays on (top-level wrangler vars) so tests can seed meshes over the IO routes. */
export function adminEnv(vars: Partial<Env> = {}): Env {
  return { ...env, ADMIN_TOKEN, SESSION_SIGNING_KEY: SIGNING_KEY, LOG_REQUESTS: "0", ...vars } as Env;
}

/**
 * One request through the worker. The body is read before the execution context is awaited:
 * a streamed body's log line (a waitUntil) only settles once the body has been consumed.
 */
export async function call(target: Env, path: string, init: RequestInit = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`http://meshbox.test/sync${path}`, init), target, ctx);
  const body = res.status === 101 || res.status === 204 ? null : await res.arrayBuffer();
  await waitOnExecutionContext(ctx);
  return new Response(body, { status: res.status, headers: res.headers });
}

export const asAdmin = (init: RequestInit = {}, token = ADMIN_TOKEN): RequestInit => ({
  ...init,
  headers: { ...(init.headers as Record<string, string> | undefined), Authorization: `Bearer ${token}` },
});

export const jsonBody = (value: unknown): RequestInit => ({
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify(value),
});

export const uniqueMesh = () => `ops-${crypto.randomUUID()}`;

export async function putFile(target: Env, mesh: string, path: string, body: string | Uint8Array): Promise<Response> {
  return call(target, `/io/${mesh}/file?path=${encodeURIComponent(path)}`, { method: "PUT", body });
}

export async function listFiles(target: Env, mesh: string, path: string): Promise<{ name: string; size: number; etag: string }[]> {
  const res = await call(target, `/io/${mesh}/list-files`, { method: "POST", body: JSON.stringify({ path }) });
  if (res.status !== 200) throw new Error(`list-files ${path}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { files: { name: string; size: number; etag: string }[] }).files;
}

/** A change-file name the core classifies as a change (`<15-digit ms>-<4 hex>-<device>-chg_<id>.json`). */
export const changeName = (n: number) => `${String(1_700_000_000_000 + n).padStart(15, "0")}-0000-dev1-chg_${n}.json`;

/** The manifest pointer + generation 1 the real client writes when it bootstraps a root. */
export async function bootstrapRoot(target: Env, mesh: string, root: string): Promise<void> {
  const generation = JSON.stringify({ version: 3, meshId: mesh, epoch: 1, snapshotPath: null, encrypted: true });
  const g = await putFile(target, mesh, `${root}/manifest-1.json`, generation);
  if (g.status !== 201) throw new Error(`manifest-1: ${g.status} ${await g.text()}`);
  const pointer = JSON.stringify({ currentGeneration: 1, file: "manifest-1.json" }, null, 2);
  const p = await putFile(target, mesh, `${root}/manifest.json`, pointer);
  if (p.status !== 201) throw new Error(`manifest.json: ${p.status} ${await p.text()}`);
}
