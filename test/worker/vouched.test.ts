// A listing vouches for the live change files it names (worker/objects/vouched.ts): the GETs that
// follow it skip the index check, while every other GET keeps it.
import { describe, expect, it } from "vitest";
import type { Env } from "../../worker/env";
import { adminEnv, call, changeName } from "./admin-support";
import { indexBinding, newMesh } from "./io-support";
import { isVouched, vouchFor } from "../../worker/objects/vouched";

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

  it("check the index for a listed change file that is already deleted (listed only for its window)", async () => {
    const mesh = newMesh();
    const plain = adminEnv();
    const live = `/R/changes/${changeName(6)}`;
    const gone = `/R/changes/${changeName(7)}`;
    for (const path of [live, gone]) expect((await put(plain, mesh, path, path)).status).toBe(201);
    expect((await call(plain, `/io/${mesh}/file?path=${encodeURIComponent(gone)}`, { method: "DELETE" })).status).toBe(204);
    const { target, batches } = await countingEnv(mesh);
    const listed = (await (await list(target, mesh, "/R/changes")).json()) as { files: { path: string }[] };
    expect(listed.files.map((f) => f.path).sort()).toEqual([live, gone].sort());
    const afterList = batches();
    expect((await get(target, mesh, live)).status).toBe(200);
    expect(batches()).toBe(afterList);
    expect((await get(target, mesh, gone)).status).toBe(200);
    expect(batches()).toBe(afterList + 1);
  });
});

describe("The vouched listings an isolate keeps", () => {
  const listing = (names: string[]) => ({
    files: JSON.stringify(names.map((name) => ({ name, path: `/R/changes/${name}`, size: 1, modifiedTime: new Date(0).toISOString(), etag: '"e"' }))),
    deleted: "[]",
  });

  it("are one per folder: a newer listing replaces the older one's names", () => {
    const mesh = newMesh();
    const [a, b] = [changeName(8), changeName(9)];
    const now = Date.now();
    vouchFor(mesh, "/R/changes", listing([a]), now);
    vouchFor(mesh, "/R/changes", listing([b]), now);
    expect(isVouched(mesh, `/R/changes/${a}`, now, 60_000)).toBe(false);
    expect(isVouched(mesh, `/R/changes/${b}`, now, 60_000)).toBe(true);
  });

  it("are bounded: past 1,000 folders the oldest listing vouches for nothing", () => {
    const first = newMesh();
    const name = changeName(10);
    const now = Date.now();
    vouchFor(first, "/R/changes", listing([name]), now);
    expect(isVouched(first, `/R/changes/${name}`, now, 60_000)).toBe(true);
    vouchFor(first, "/R/changes", listing([name]), now);
    for (let i = 0; i < 1_000; i++) vouchFor(newMesh(), "/R/changes", listing([name]), now);
    expect(isVouched(first, `/R/changes/${name}`, now, 60_000)).toBe(false);
  });

  it("never vouch for a file outside the listed folder or a name that is not a change file", () => {
    const mesh = newMesh();
    const name = changeName(11);
    const now = Date.now();
    vouchFor(mesh, "/R/changes", { files: JSON.stringify([{ name: "head.json", path: "/R/changes/head.json", size: 1, modifiedTime: "", etag: "" }, { name, path: `/R/changes/${name}`, size: 1, modifiedTime: "", etag: "" }]), deleted: "[]" }, now);
    expect(isVouched(mesh, "/R/changes/head.json", now, 60_000)).toBe(false);
    expect(isVouched(mesh, `/R/other/${name}`, now, 60_000)).toBe(false);
    expect(isVouched(mesh, `/R/changes/${name}`, now + 60_000, 60_000)).toBe(false);
    expect(isVouched(mesh, `/R/changes/${name}`, now, 60_000)).toBe(true);
  });
});
