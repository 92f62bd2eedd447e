// A client version whose HLC texts are ISO timestamps, driven over plain HTTP against the real
// worker (wrangler dev, local R2/D1/DO): its change files are write-once like any client's, and
// after a compaction deletes them a device that listed them a moment earlier still reads them
// (within DELETED_CHANGE_GRACE_MS), instead of halting on a 404 ("poisoned" until it reconnects).
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWorker, type RunningWorker } from "./support/worker-process";

let worker: RunningWorker;
beforeAll(async () => {
  worker = await startWorker();
});
afterAll(async () => {
  await worker?.stop();
});

const ROOT = "/MyApp";

function client(mesh: string) {
  const io = `${worker.base}/io/${mesh}`;
  const fileUrl = (path: string) => `${io}/file?path=${encodeURIComponent(path)}`;
  return {
    put: (path: string, body: string) => fetch(fileUrl(path), { method: "PUT", body }),
    get: (path: string) => fetch(fileUrl(path)),
    head: (path: string) => fetch(fileUrl(path), { method: "HEAD" }),
    del: (path: string) => fetch(fileUrl(path), { method: "DELETE" }),
    async list(folder: string): Promise<{ name: string; path: string; size: number }[]> {
      const res = await fetch(`${io}/list-files`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ path: folder }) });
      expect(res.status).toBe(200);
      return ((await res.json()) as { files: { name: string; path: string; size: number }[] }).files;
    },
  };
}

/** An ISO-style HLC as another client version writes it: `<ISO time>_<counter>_<device>`. */
function isoHlc(at: Date, counter: number, device: string): string {
  return `${at.toISOString()}_${String(counter).padStart(4, "0")}_${device}`;
}

describe("a client version that writes ISO-timestamp HLC names", () => {
  it("gets write-once change files and, after a compaction deletes them, a puller that listed them still reads them", async () => {
    const mesh = `mesh_${randomUUID()}`;
    const writer = client(mesh);
    const puller = client(mesh);
    expect((await fetch(`${worker.base}/io/${mesh}/health`)).status).toBe(200);

    // Bootstrap the way the client does when GET manifest.json fails.
    const gen1 = JSON.stringify({ version: 3, meshId: mesh, epoch: 1, generation: 1, snapshotPath: null, encrypted: true });
    expect((await writer.put(`${ROOT}/manifest-1.json`, gen1)).status).toBe(201);
    expect((await writer.put(`${ROOT}/manifest.json`, JSON.stringify({ currentGeneration: 1, file: "manifest-1.json" }, null, 2))).status).toBe(201);

    // Flushes: one change file each, then head.json with the same ISO-style HLC.
    const start = new Date("2026-12-02T08:00:00.000Z");
    const written = new Map<string, string>();
    for (let n = 0; n < 3; n++) {
      const hlc = isoHlc(new Date(start.getTime() + n * 1000), n, "dev1");
      const name = `${hlc}-chg_${randomUUID()}.json`;
      const body = JSON.stringify({ v: 1, iv: `iv-${n}`, ct: `first encryption of change ${n}` });
      expect((await writer.put(`${ROOT}/changes/${name}`, body)).status).toBe(201);
      expect((await writer.put(`${ROOT}/changes/head.json`, JSON.stringify({ latestHlc: hlc }))).status).toBe(n === 0 ? 201 : 204);
      written.set(name, body);
    }

    // A retried flush re-encrypts the same change under the same name: 200, first bytes kept.
    const [firstName, firstBody] = [...written][0]!;
    const retry = await writer.put(`${ROOT}/changes/${firstName}`, JSON.stringify({ v: 1, iv: "new-iv", ct: "re-encrypted" }));
    expect(retry.status).toBe(200);
    const kept = await puller.get(`${ROOT}/changes/${firstName}`);
    expect(kept.status).toBe(200);
    expect(kept.headers.get("Content-Type")).toBe("application/octet-stream");
    expect(await kept.text()).toBe(firstBody);

    // The puller lists changes/ (it will GET these names next) ...
    const listed = (await puller.list(`${ROOT}/changes`)).filter((f) => f.name.includes("-chg_"));
    expect(listed.map((f) => f.name).sort()).toEqual([...written.keys()].sort());

    // ... while the writer compacts: snapshot, generation 2, pointer, then deletes what it covers.
    const snapshotPath = `${ROOT}/mainline/snapshot-2-server_relay_1.json`;
    expect((await writer.put(snapshotPath, JSON.stringify({ v: 1, iv: "s", ct: "snapshot" }))).status).toBe(201);
    const gen2 = JSON.stringify({ version: 3, meshId: mesh, epoch: 2, generation: 2, parentGeneration: 1, snapshotPath, encrypted: true });
    expect((await writer.put(`${ROOT}/manifest-2.json`, gen2)).status).toBe(201);
    expect((await writer.put(`${ROOT}/manifest.json`, JSON.stringify({ currentGeneration: 2, file: "manifest-2.json" }, null, 2))).status).toBe(204);
    for (const name of written.keys()) expect((await writer.del(`${ROOT}/changes/${name}`)).status).toBe(204);

    // Every name the puller listed is still served, byte for byte, within the grace period.
    for (const file of listed) {
      const res = await puller.get(file.path);
      expect({ name: file.name, status: res.status }).toEqual({ name: file.name, status: 200 });
      expect(await res.text()).toBe(written.get(file.name));
      const headRes = await puller.head(file.path);
      expect(headRes.status).toBe(200);
      expect(headRes.headers.get("Content-Length")).toBe(String(Buffer.byteLength(written.get(file.name)!)));
      expect(await headRes.text()).toBe("");
    }
    // A re-PUT of a deleted change file does not bring it back (the snapshot covers it).
    expect((await writer.put(`${ROOT}/changes/${firstName}`, "again")).status).toBe(200);
    expect(await (await puller.get(`${ROOT}/changes/${firstName}`)).text()).toBe(firstBody);
  });

  it("answers HEAD over the wire with GET's Content-Length and no body", async () => {
    const get = await fetch(`${worker.base}/health`);
    const sent = (await get.arrayBuffer()).byteLength;
    const headRes = await fetch(`${worker.base}/health`, { method: "HEAD" });
    expect(headRes.status).toBe(200);
    expect(headRes.headers.get("Content-Type")).toBe(get.headers.get("Content-Type"));
    expect(headRes.headers.get("Content-Length")).toBe(String(sent));
    expect(await headRes.text()).toBe("");
  });
});
