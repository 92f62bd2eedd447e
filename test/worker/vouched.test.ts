// A listing vouches for the live change files it names (worker/objects/vouched.ts): the GETs that
// follow it skip the index check, while every other GET keeps it.
import { describe, expect, it } from "vitest";
import type { Env } from "../../worker/env";
import { adminEnv, call, changeName } from "./admin-support";
import { indexBinding, newMesh } from "./io-support";

/** The mesh's real index binding, counting the batches run on it. */
async function countingEnv(mesh: string, vars: Partial<Env> = {}): Promise<{ target: Env; batches: () => number }> {
  const { name, db } = await indexBinding(mesh);
  let count = 0;
  const counted = new Proxy(db, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (prop === "batch") count++;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { target: { ...adminEnv(vars), [name]: counted } as Env, batches: () => count };
}

const put = (target: Env, mesh: string, path: string, body: string) =>
  call(target, `/io/${mesh}/file?path=${encodeURIComponent(path)}`, { method: "PUT", body });
const get = (target: Env, mesh: string, path: string) => call(target, `/io/${mesh}/file?path=${encodeURIComponent(path)}`);
const list = (target: Env, mesh: string, path: string) =>
  call(target, `/io/${mesh}/list-files`, { method: "POST", body: JSON.stringify({ path }) });

describe("GETs after a listing", () => {
  it("serve the change files it named without asking the index", async () => {
    const mesh = newMesh();
    const plain = adminEnv();
    const names = [1, 2, 3].map((i) => changeName(i));
    for (const name of names) expect((await put(plain, mesh, `/R/changes/${name}`, name)).status).toBe(201);
    const { target, batches } = await countingEnv(mesh);
    expect((await list(target, mesh, "/R/changes")).status).toBe(200);
    const afterList = batches();
    for (const name of names) {
      const res = await get(target, mesh, `/R/changes/${name}`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(name);
    }
    expect(batches()).toBe(afterList);
  });

  it("still check the index for a file no listing named, and for other classes", async () => {
    const mesh = newMesh();
    const plain = adminEnv();
    expect((await put(plain, mesh, "/R/changes/" + changeName(1), "c")).status).toBe(201);
    expect((await put(plain, mesh, "/R/other.bin", "o")).status).toBe(201);
    const { target, batches } = await countingEnv(mesh);
    expect((await list(target, mesh, "/R")).status).toBe(200);
    const before = batches();
    expect((await get(target, mesh, "/R/other.bin")).status).toBe(200);
    expect(batches()).toBeGreaterThan(before);
  });

  it("never vouch longer than the grace: with DELETED_CHANGE_GRACE_MS=0 a listed change file deleted since answers 404", async () => {
    const mesh = newMesh();
    const noGrace = adminEnv({ DELETED_CHANGE_GRACE_MS: "0", DELETED_CHANGE_LISTING_MS: "0" });
    const path = `/R/changes/${changeName(4)}`;
    expect((await put(noGrace, mesh, path, "gone soon")).status).toBe(201);
    expect((await list(noGrace, mesh, "/R/changes")).status).toBe(200);
    expect((await call(noGrace, `/io/${mesh}/file?path=${encodeURIComponent(path)}`, { method: "DELETE" })).status).toBe(204);
    expect((await get(noGrace, mesh, path)).status).toBe(404);
  });

  it("serve a listed change file deleted since, as its grace allows", async () => {
    const mesh = newMesh();
    const plain = adminEnv();
    const path = `/R/changes/${changeName(5)}`;
    expect((await put(plain, mesh, path, "covered")).status).toBe(201);
    expect((await list(plain, mesh, "/R/changes")).status).toBe(200);
    expect((await call(plain, `/io/${mesh}/file?path=${encodeURIComponent(path)}`, { method: "DELETE" })).status).toBe(204);
    const res = await get(plain, mesh, path);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("covered");
  });
});
