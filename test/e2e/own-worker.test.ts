// examples/own-worker under `wrangler dev`: an app Worker with a route of its own and meshbox
// mounted under /sync through createMeshbox, with the app's authorize hook deciding who gets in.
// Two simulated devices (support/device.ts) sync through it with app tokens.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Device } from "./support/device";
import { startWorker, type RunningWorker } from "./support/worker-process";

let worker: RunningWorker;
beforeAll(async () => {
  worker = await startWorker({ config: "examples/own-worker/wrangler.toml", readyPath: "/hello" });
});
afterAll(async () => {
  await worker?.stop();
});

describe("examples/own-worker", () => {
  it("answers its own route next to the mounted meshbox", async () => {
    const hello = await fetch(`${worker.origin}/hello`);
    expect(hello.status).toBe(200);
    expect(await hello.json()).toEqual({ hello: "from the app", sync: `${worker.origin}/sync` });
    const other = await fetch(`${worker.origin}/nope`);
    expect(other.status).toBe(404);
    expect(await other.json()).toEqual({ error: "not_found", message: "No such route." });
    // The hook is the only way in (ALLOW_OPEN_ACCESS = "0", no secrets), and health says so.
    const health = await fetch(`${worker.base}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true, service: "meshbox", auth: ["app"] });
  });

  it("lets two devices holding the app's token converge through /sync", async () => {
    const mesh = `app_${randomUUID()}`;
    const token = `app-user-${mesh}`;
    const a = new Device({ base: worker.base, mesh, token, deviceId: "devA" });
    const b = new Device({ base: worker.base, mesh, token, deviceId: "devB" });
    await a.connect();
    await b.connect();
    const written = [a.write({ title: "from A" }), b.write({ note: "from B" })];
    await a.flush();
    await b.flush();
    written.push(a.write({ title: "A again" }));
    await a.flush();
    await a.pull();
    await b.pull();
    for (const d of [a, b]) {
      expect([...d.merged].sort()).toEqual([...written].sort());
      expect(d.outbox).toEqual([]);
      expect(Object.fromEntries([...d.rows].map(([k, v]) => [k, v.value]))).toEqual({ title: "A again", note: "from B" });
    }
  });

  it("refuses what the authorize hook refuses: 401 without an app token, 403 for another mesh's token or a write by a viewer", async () => {
    const mesh = `app_${randomUUID()}`;
    const health = (token?: string) =>
      fetch(`${worker.base}/io/${mesh}/health`, { headers: token === undefined ? {} : { Authorization: `Bearer ${token}` } });

    const none = await health();
    expect(none.status).toBe(401);
    expect(((await none.json()) as { error: string }).error).toBe("unauthorized");

    const wrong = await health(`app-user-app_${randomUUID()}`);
    expect(wrong.status).toBe(403);
    expect(await wrong.json()).toEqual({ error: "forbidden", message: "This app token does not open this mesh." });

    expect((await health(`app-user-${mesh}`)).status).toBe(200);
    const viewer = new Device({ base: worker.base, mesh, token: `app-viewer-${mesh}` });
    expect((await viewer.getFile(viewer.path("manifest.json"))).status).toBe(404);
    const put = await viewer.putFile(viewer.path("changes/x.json"), "{}");
    expect(put.status).toBe(403);
  });
});
