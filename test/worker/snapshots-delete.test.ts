// Deleting snapshots against pointer commits: the hub claims a snapshot for deletion in the same
// step that checks it is not live, so no pointer commit can make it live while its body is being
// deleted (PROTOCOL.md section 3), with the real hub, D1 and R2.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { meshHub } from "../../worker/hub-client";
import { objectKey } from "../../worker/lib/paths";
import { assertSnapshotsDeletable, forgetSnapshots } from "../../worker/objects/snapshots";
import { changeName, deleteFile, getFile, listNames, newMesh, putFile, textOf } from "./io-support";

const ROOT = "/MyApp";
const POINTER = `${ROOT}/manifest.json`;
const snapshotPath = (epoch: number) => `${ROOT}/mainline/snapshot-${epoch}-server_relay_1.json`;
const pointer = (n: number) => JSON.stringify({ currentGeneration: n, file: `manifest-${n}.json` }, null, 2);
const generation = (n: number, snapshot: string | null) =>
  JSON.stringify({ version: 3, meshId: "m", epoch: n, snapshotPath: snapshot, encrypted: true, writtenBy: "dev-a" });

async function put(mesh: string, path: string, body: string): Promise<{ status: number; body: string }> {
  const res = await putFile(mesh, path, body);
  return { status: res.status, body: await textOf(res) };
}

async function del(mesh: string, path: string): Promise<{ status: number; body: string }> {
  const res = await deleteFile(mesh, path);
  return { status: res.status, body: await textOf(res) };
}

async function bootstrap(mesh: string): Promise<void> {
  expect((await put(mesh, `${ROOT}/manifest-1.json`, generation(1, null))).status).toBe(201);
  expect((await put(mesh, POINTER, pointer(1))).status).toBe(201);
}

/** The compactor's first two writes: the snapshot and the generation that names it. */
async function stage(mesh: string, n: number): Promise<void> {
  expect((await put(mesh, snapshotPath(n), `snapshot ${n}`)).status).toBe(201);
  expect((await put(mesh, `${ROOT}/manifest-${n}.json`, generation(n, snapshotPath(n)))).status).toBe(201);
}

async function compact(mesh: string, n: number): Promise<void> {
  await stage(mesh, n);
  expect((await put(mesh, POINTER, pointer(n))).status).toBe(204);
}

const deletedMessage = (path: string) => ({
  error: "conflict",
  message: `The manifest names ${path}, which has been deleted; upload the snapshot again, then retry.`,
});

describe("DELETE /file on a mainline snapshot", () => {
  it("answers 409 for the live snapshot and leaves it readable", async () => {
    const mesh = newMesh();
    await bootstrap(mesh);
    await compact(mesh, 2);
    const res = await del(mesh, snapshotPath(2));
    expect(res.status).toBe(409);
    expect(JSON.parse(res.body)).toEqual({
      error: "conflict",
      message: `${snapshotPath(2)} is the snapshot the committed manifest names; it cannot be deleted.`,
    });
    expect(await textOf(await getFile(mesh, snapshotPath(2)))).toBe("snapshot 2");
    expect(await listNames(mesh, `${ROOT}/mainline`)).toEqual(["snapshot-2-server_relay_1.json"]);
  });

  it("answers 409 while the snapshot's upload holds the lease and has not finished, and deletes nothing", async () => {
    const mesh = newMesh();
    const path = snapshotPath(2);
    // An earlier attempt left its body in R2 but never reached the index; a new upload is under way.
    await env.BUCKET.put(objectKey(mesh, path), "earlier attempt");
    expect(await startUpload(mesh, path)).toBe("owner");
    const res = await del(mesh, path);
    expect(res.status).toBe(409);
    expect(JSON.parse(res.body)).toEqual({
      error: "conflict",
      message: `${path} is still being uploaded; it cannot be deleted until the upload finished.`,
    });
    expect(await textOf(await getFile(mesh, path))).toBe("earlier attempt");
  });

  it("keeps the real client's compaction working: covered change files and every other snapshot are deleted, the live one stays", async () => {
    const mesh = newMesh();
    await bootstrap(mesh);
    const changes = [changeName(1), changeName(2), changeName(3)];
    for (const name of changes) expect((await put(mesh, `${ROOT}/changes/${name}`, `change ${name}`)).status).toBe(201);
    await compact(mesh, 2);
    for (const name of changes) expect((await del(mesh, `${ROOT}/changes/${name}`)).status).toBe(204);
    await compact(mesh, 3);
    // CLIENT.md "Compact": list mainline, then DELETE every snapshot but the one just committed.
    for (const name of await listNames(mesh, `${ROOT}/mainline`)) {
      if (name !== "snapshot-3-server_relay_1.json") expect((await del(mesh, `${ROOT}/mainline/${name}`)).status).toBe(204);
    }
    expect(await listNames(mesh, `${ROOT}/mainline`)).toEqual(["snapshot-3-server_relay_1.json"]);
    // Covered change files stay listed through the listing window (PROTOCOL section 3).
    expect(await listNames(mesh, `${ROOT}/changes`)).toEqual([...changes].sort());
    // The next compaction goes through, and then the previous snapshot is deletable in turn.
    await compact(mesh, 4);
    expect((await del(mesh, snapshotPath(3))).status).toBe(204);
    expect((await del(mesh, snapshotPath(4))).status).toBe(409);
    expect(await textOf(await getFile(mesh, POINTER))).toBe(pointer(4));
  });
});

describe("PUT /file manifest.json naming a deleted snapshot", () => {
  it("answers 409 when the snapshot the generation names was deleted, and keeps the pointer", async () => {
    const mesh = newMesh();
    await bootstrap(mesh);
    await stage(mesh, 2);
    // A slower device's compaction deletes "every other snapshot", this candidate included.
    expect((await del(mesh, snapshotPath(2))).status).toBe(204);
    const res = await put(mesh, POINTER, pointer(2));
    expect(res.status).toBe(409);
    expect(JSON.parse(res.body)).toEqual(deletedMessage(snapshotPath(2)));
    expect(await textOf(await getFile(mesh, POINTER))).toBe(pointer(1));
    expect((await getFile(mesh, snapshotPath(2))).status).toBe(404);
  });

  it("answers 409 to a commit that lands between a delete's check and its removal of the body", async () => {
    const mesh = newMesh();
    await bootstrap(mesh);
    await stage(mesh, 2);
    // The DELETE's first step (what deleteTree calls before it touches the index or R2).
    await assertSnapshotsDeletable(env, mesh, [snapshotPath(2)]);
    const res = await put(mesh, POINTER, pointer(2));
    expect(res.status).toBe(409);
    expect(JSON.parse(res.body)).toEqual(deletedMessage(snapshotPath(2)));
    await forgetSnapshots(env, mesh, [snapshotPath(2)]);
    expect((await put(mesh, POINTER, pointer(2))).status).toBe(409);
    expect(await textOf(await getFile(mesh, POINTER))).toBe(pointer(1));
  });

  it("commits a snapshot uploaded again after its delete", async () => {
    const mesh = newMesh();
    await bootstrap(mesh);
    await stage(mesh, 2);
    expect((await del(mesh, snapshotPath(2))).status).toBe(204);
    expect((await put(mesh, POINTER, pointer(2))).status).toBe(409);
    // The client retries its compaction: the snapshot is a new upload (201), the generation is unchanged (200).
    expect((await put(mesh, snapshotPath(2), "snapshot 2 again")).status).toBe(201);
    expect((await put(mesh, `${ROOT}/manifest-2.json`, generation(2, snapshotPath(2)))).status).toBe(200);
    expect((await put(mesh, POINTER, pointer(2))).status).toBe(204);
    expect(await textOf(await getFile(mesh, snapshotPath(2)))).toBe("snapshot 2 again");
    expect(await listNames(mesh, `${ROOT}/mainline`)).toEqual(["snapshot-2-server_relay_1.json"]);
  });

  it("answers 409 when the snapshot the generation names has not finished uploading", async () => {
    const mesh = newMesh();
    await bootstrap(mesh);
    const path = snapshotPath(2);
    expect(await startUpload(mesh, path)).toBe("owner");
    expect((await put(mesh, `${ROOT}/manifest-2.json`, generation(2, path))).status).toBe(201);
    const res = await put(mesh, POINTER, pointer(2));
    expect(res.status).toBe(409);
    expect(JSON.parse(res.body)).toEqual({
      error: "conflict",
      message: `The manifest names ${path}, whose upload has not finished; retry once it has.`,
    });
  });

  it("lets exactly one of a concurrent delete and commit of the same snapshot win, and never loses a live body", async () => {
    const rounds = Array.from({ length: 12 }, async () => {
      const mesh = newMesh();
      await bootstrap(mesh);
      await stage(mesh, 2);
      const [deleted, committed] = await Promise.all([del(mesh, snapshotPath(2)), put(mesh, POINTER, pointer(2))]);
      const outcome = [deleted.status, committed.status];
      if (committed.status === 204) {
        expect(outcome).toEqual([409, 204]);
        expect(await textOf(await getFile(mesh, snapshotPath(2)))).toBe("snapshot 2");
      } else {
        expect(outcome).toEqual([204, 409]);
        expect(await textOf(await getFile(mesh, POINTER))).toBe(pointer(1));
      }
    });
    await Promise.all(rounds);
  });
});

describe("PUT /file mainline snapshot while it is being deleted", () => {
  it("answers 409 until the delete finished, then accepts a new upload with 201", async () => {
    const mesh = newMesh();
    const path = snapshotPath(2);
    expect((await put(mesh, path, "first")).status).toBe(201);
    await assertSnapshotsDeletable(env, mesh, [path]);
    const res = await put(mesh, path, "second");
    expect(res.status).toBe(409);
    expect(JSON.parse(res.body)).toEqual({
      error: "conflict",
      message: `${path} is being deleted; retry the PUT once the delete finished.`,
    });
    // The rest of the delete, as deleteTree does it: R2 body, then the hub's marker.
    expect((await del(mesh, path)).status).toBe(204);
    expect((await put(mesh, path, "second")).status).toBe(201);
    expect(await textOf(await getFile(mesh, path))).toBe("second");
  });
});

/** What a PUT does before its body reaches R2: it takes the lease, and here never finishes. */
async function startUpload(mesh: string, path: string): Promise<string> {
  const opening = await meshHub(env, mesh).openSnapshot(mesh, path, undefined, 60_000);
  return opening.ok ? opening.role : opening.code;
}
