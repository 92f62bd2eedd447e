// Faults around control writes: a control write needs no D1 at all (the hub is its only record),
// a snapshot's index write fails after R2 took it (503, and the client's retry repairs the index),
// and the hub is evicted between writes (state is durable).
import { env, evictDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Env } from "../../worker/env";
import { putControlObject, readControlObject } from "../../worker/objects/control-objects";
import { putSnapshot } from "../../worker/objects/snapshots";
import { indexBinding, indexOverride } from "./io-support";

const newMesh = () => `faults-${crypto.randomUUID()}`;
const enc = new TextEncoder();

/** The real D1 binding, except that batch() fails (as D1 does when it is unavailable). */
async function failingIndexEnv(mesh: string): Promise<Env> {
  const db = new Proxy((await indexBinding(mesh)).db, {
    get(target, prop, receiver) {
      if (prop === "batch") return () => Promise.reject(new Error("D1_ERROR: injected outage"));
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { ...env, ...(await indexOverride(mesh, db)) } as Env;
}

async function listNames(mesh: string, folder: string): Promise<string[]> {
  const res = await SELF.fetch(`http://meshbox.test/sync/io/${mesh}/list-files`, { method: "POST", body: JSON.stringify({ path: folder }) });
  const { files } = (await res.json()) as { files: { name: string }[] };
  return files.map((f) => f.name);
}

/** The real env with every D1 binding (DB and any index shard) throwing on use: proves a path never touches D1. */
function unusableIndexEnv(): Env {
  const unusable = new Proxy(env.DB, {
    get() {
      throw new Error("D1 was used");
    },
  });
  const bindings = Object.keys(env).filter((k) => k === "DB" || k.startsWith("INDEX_DB_"));
  return { ...env, ...Object.fromEntries(bindings.map((k) => [k, unusable])) } as Env;
}

describe("PUT changes/head.json while D1 is unavailable", () => {
  it("is acknowledged by the hub alone, and listings show it at once", async () => {
    const mesh = newMesh();
    const body = enc.encode(JSON.stringify({ latestHlc: "000000000000001-0000-a" }));
    const put = await putControlObject(unusableIndexEnv(), mesh, "/R/changes/head.json", "head", body, {});
    expect(put).toMatchObject({ status: 201, changed: true, entry: { path: "/R/changes/head.json", location: "hub", version: 1 } });
    expect(await listNames(mesh, "/R/changes")).toEqual(["head.json"]);
    const retry = await putControlObject(unusableIndexEnv(), mesh, "/R/changes/head.json", "head", body, {});
    expect(retry).toMatchObject({ status: 200, changed: false });
  });
});

describe("PUT mainline/<snapshot> when the index fails", () => {
  it("answers 503, and the identical retry answers 200 and repairs the index", async () => {
    const mesh = newMesh();
    const path = "/R/mainline/snapshot-2-server_relay_1.json";
    const req = () => new Request("http://x/", { method: "PUT", body: "snapshot bytes" });
    await expect(putSnapshot(await failingIndexEnv(mesh), mesh, path, req(), {})).rejects.toMatchObject({ status: 503 });
    const retry = await putSnapshot(env, mesh, path, req(), {});
    expect(retry).toMatchObject({ status: 200, changed: false, entry: { path, cls: "snapshot", size: 14 } });
    expect(await listNames(mesh, "/R/mainline")).toEqual(["snapshot-2-server_relay_1.json"]);
  });
});

describe("MeshHub eviction between control writes", () => {
  it("keeps the pointer, its CAS state and the bytes verbatim across an eviction", async () => {
    const mesh = newMesh();
    const gen = enc.encode(JSON.stringify({ epoch: 1, snapshotPath: null }));
    const ptr = enc.encode(JSON.stringify({ currentGeneration: 1, file: "manifest-1.json" }, null, 2));
    await putControlObject(env, mesh, "/R/manifest-1.json", "generation", gen, {});
    await putControlObject(env, mesh, "/R/manifest.json", "manifest", ptr, {});
    await evictDurableObject(env.MESH_HUB.get(env.MESH_HUB.idFromName(mesh)));
    const read = await readControlObject(env, mesh, "/R/manifest.json");
    expect(new TextDecoder().decode(read!.body)).toBe(new TextDecoder().decode(ptr));
    await expect(
      putControlObject(env, mesh, "/R/manifest-1.json", "generation", enc.encode("{}"), {}),
    ).rejects.toMatchObject({ status: 409 });
  });
});
