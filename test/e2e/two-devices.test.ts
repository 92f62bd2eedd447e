// Two devices share one mesh through the real worker (wrangler dev, local R2/D1/DO): each writes
// change files the way a flush does, the other lists and reads them back byte for byte.
import { randomBytes, randomUUID } from "node:crypto";
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

/** The requests a CloudflareAdapter-style client makes, for one device. */
function device(mesh: string, deviceId: string) {
  const io = () => `${worker.base}/io/${mesh}`;
  const fileUrl = (path: string) => `${io()}/file?path=${encodeURIComponent(path)}`;
  const post = (route: string, path: string) =>
    fetch(`${io()}/${route}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ path }) });
  let counter = 0;
  return {
    deviceId,
    changeName(): string {
      counter++;
      const hlc = `${String(Date.now()).padStart(15, "0")}-${counter.toString(16).padStart(4, "0")}-${deviceId}`;
      return `${hlc}-chg_${randomUUID()}.json`;
    },
    put: (path: string, body: Uint8Array | string) => fetch(fileUrl(path), { method: "PUT", body: typeof body === "string" ? body : Buffer.from(body) }),
    get: (path: string) => fetch(fileUrl(path)),
    del: (path: string) => fetch(fileUrl(path), { method: "DELETE" }),
    ensureFolder: (path: string) => post("ensure-folder", path),
    async listChanges(): Promise<{ name: string; path: string; size: number; etag: string }[]> {
      const res = await post("list-files", `${ROOT}/changes`);
      expect(res.status).toBe(200);
      return ((await res.json()) as { files: { name: string; path: string; size: number; etag: string }[] }).files;
    },
  };
}

describe("two devices sharing a mesh", () => {
  it("each reads back, byte for byte, the change files the other wrote", async () => {
    const mesh = `mesh_${randomUUID()}`;
    const a = device(mesh, "devA");
    const b = device(mesh, "devB");

    const health = await fetch(`${worker.base}/io/${mesh}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true, mesh });
    for (const dev of [a, b]) {
      for (const folder of [ROOT, `${ROOT}/devices`, `${ROOT}/mainline`, `${ROOT}/changes`]) {
        expect((await dev.ensureFolder(folder)).status).toBe(204);
      }
    }
    // B lists before anything exists: the folder gets indexed while empty and must stay exact.
    expect(await b.listChanges()).toEqual([]);

    const written = new Map<string, Uint8Array>();
    for (const [dev, count] of [[a, 12], [b, 5]] as const) {
      for (let i = 0; i < count; i++) {
        const name = dev.changeName();
        // Binary and varied sizes, some past one R2 streaming chunk.
        const body = new Uint8Array(randomBytes(i % 4 === 0 ? 300_000 + i : 50 + i * 37));
        const res = await dev.put(`${ROOT}/changes/${name}`, body);
        expect(res.status).toBe(201);
        written.set(name, body);
      }
    }
    // A retried flush re-encrypts the same change: 200, and the first bytes stay.
    const [firstName, firstBody] = [...written][0]!;
    expect((await a.put(`${ROOT}/changes/${firstName}`, new Uint8Array(randomBytes(64)))).status).toBe(200);

    for (const [reader, writerId] of [[b, "devA"], [a, "devB"]] as const) {
      const listed = await reader.listChanges();
      expect(listed.map((f) => f.name)).toEqual([...written.keys()].sort());
      for (const file of listed.filter((f) => f.name.includes(`-${writerId}-chg_`))) {
        const res = await reader.get(file.path);
        expect(res.status).toBe(200);
        expect(res.headers.get("ETag")).toBe(file.etag);
        expect(Number(res.headers.get("Content-Length"))).toBe(file.size);
        expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(written.get(file.name)!))).toBe(true);
      }
    }
    expect(Buffer.from(await (await b.get(`${ROOT}/changes/${firstName}`)).arrayBuffer()).equals(Buffer.from(firstBody))).toBe(true);

    // A compaction on A deletes the first change file: B still sees it listed through the listing
    // window (PROTOCOL section 3, "Deleted change files") and a GET of it still succeeds.
    expect((await a.del(`${ROOT}/changes/${firstName}`)).status).toBe(204);
    expect((await b.listChanges()).map((f) => f.name)).toContain(firstName);
    const late = await b.get(`${ROOT}/changes/${firstName}`);
    expect(late.status).toBe(200);
    expect(Buffer.from(await late.arrayBuffer()).equals(Buffer.from(firstBody))).toBe(true);
  });
});
