// Fault tests: a real D1 binding wrapped to fail once, or R2 left behind by a failed write.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import * as files from "../../worker/objects/files";
import { HttpError } from "../../worker/lib/errors";
import { changeName, getFile, indexBinding, indexOverride, listNames, newMesh, putFile, r2Keys, textOf } from "./io-support";
import type { Env } from "../../worker/env";

/** The real D1 binding, except that its next batch() throws. */
function failingNextBatch(db: D1Database): D1Database {
  let armed = true;
  return new Proxy(db, {
    get(target, prop, receiver) {
      if (prop === "batch" && armed) {
        return async () => {
          armed = false;
          throw new Error("D1_ERROR: injected failure");
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

async function putThroughFailingIndex(mesh: string, path: string, body: string): Promise<unknown> {
  const brokenEnv = { ...env, ...(await indexOverride(mesh, failingNextBatch((await indexBinding(mesh)).db))) } as Env;
  const ctx = createExecutionContext();
  const request = new Request("http://x/", { method: "PUT", body, headers: { "Content-Length": String(body.length) } });
  try {
    return await files.putFile({ env: brokenEnv, ctx, meshId: mesh, path, request, pre: {} });
  } catch (err) {
    return err;
  } finally {
    await waitOnExecutionContext(ctx);
  }
}

describe("PUT /sync/io/:mesh/file when the index write fails", () => {
  it("answers 503 for a change file, and the client's retry repairs the index with the first bytes", async () => {
    const mesh = newMesh();
    const name = changeName(1);
    const path = `/App/changes/${name}`;
    // Indexed while empty, so the listing below comes from D1 alone (no read-through fill).
    expect(await listNames(mesh, "/App/changes")).toEqual([]);
    const err = await putThroughFailingIndex(mesh, path, "first attempt");
    expect(err).toBeInstanceOf(HttpError);
    expect((err as HttpError).status).toBe(503);
    expect((err as HttpError).code).toBe("unavailable");
    expect(await r2Keys(`m/${mesh}/`)).toEqual([`m/${mesh}${path}`]);
    // Not half-visible: the body is in R2, but GET agrees with the listing until the retry.
    expect(await listNames(mesh, "/App/changes")).toEqual([]);
    expect((await getFile(mesh, path)).status).toBe(404);

    const retry = await putFile(mesh, path, "retried, re-encrypted");
    expect(retry.status).toBe(200);
    expect(await listNames(mesh, "/App/changes")).toEqual([name]);
    expect(await textOf(await getFile(mesh, path))).toBe("first attempt");
  });

  it("answers 503 for an other file, and the retry creates it (201) and lists it", async () => {
    const mesh = newMesh();
    const err = await putThroughFailingIndex(mesh, "/App/x.bin", "v1");
    expect((err as HttpError).status).toBe(503);
    // The failed attempt was never acknowledged, so the retry is the creation, not a repeat.
    expect((await putFile(mesh, "/App/x.bin", "v1")).status).toBe(201);
    expect(await listNames(mesh, "/App")).toEqual(["x.bin"]);
  });
});

describe("DELETE /sync/io/:mesh/file when the index write fails", () => {
  it("answers 503 and leaves the object listed and readable, so the client's retry deletes it", async () => {
    const mesh = newMesh();
    await putFile(mesh, "/App/a", "a");
    expect(await listNames(mesh, "/App")).toEqual(["a"]);
    const ctx = createExecutionContext();
    const brokenEnv = { ...env, ...(await indexOverride(mesh, failingNextBatch((await indexBinding(mesh)).db))) } as Env;
    const err = await files.deleteTree(brokenEnv, ctx, mesh, "/App/a", {}).catch((e: unknown) => e);
    await waitOnExecutionContext(ctx);
    expect((err as HttpError).status).toBe(503);
    expect(await listNames(mesh, "/App")).toEqual(["a"]);
    expect(await textOf(await getFile(mesh, "/App/a"))).toBe("a");
  });
});
