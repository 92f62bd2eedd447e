// The whole device flow on a worker configured like a tenant (no open access): devices carry the
// mesh bearer token on every HTTP request and as `access_token` on the push socket, exactly as the
// client does, and a device holding another mesh's token is stopped at the health probe.
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWorker, type RunningWorker } from "./support/worker-process";
import { Device, WireError } from "./support/device";

const MESH_SECRET = "scenario-mesh-token-secret";

let worker: RunningWorker;
beforeAll(async () => {
  worker = await startWorker({ frozenSources: true, vars: { ALLOW_OPEN_ACCESS: "0", MESH_TOKEN_SECRET: MESH_SECRET } });
});
afterAll(async () => {
  await worker?.stop();
});

/** The mesh bearer of DESIGN.md: lowercase hex SHA-256(meshId + MESH_TOKEN_SECRET). */
function meshToken(mesh: string): string {
  return createHash("sha256").update(mesh + MESH_SECRET).digest("hex");
}

function device(mesh: string, name: string, token = meshToken(mesh)): Device {
  return new Device({ base: worker.base, mesh, token, deviceId: `${name}_${crypto.randomUUID().slice(0, 8)}` });
}

describe("devices with mesh bearer tokens", () => {
  it("connect, flush, receive a push over access_token, pull and compact", async () => {
    const mesh = `mesh_${crypto.randomUUID()}`;
    const a = device(mesh, "a");
    const b = device(mesh, "b");
    try {
      await a.connect();
      await b.connect();
      await b.subscribe();
      const name = a.write({ secret: "ciphertext only" });
      await a.flush();
      await b.nextFrame((f) => f.path === a.path(`changes/${name}`) || (f.paths ?? []).includes(a.path(`changes/${name}`)), 10_000);
      expect((await b.pull()).merged).toEqual([name]);
      expect(await b.compact()).toMatchObject({ ok: true, generation: 2, epoch: 1 });
      await a.connect();
      expect(a.epoch).toBe(1);
    } finally {
      await b.close();
    }
  });

  it("a device holding another mesh's token fails the health probe with 401 or 403 and writes nothing", async () => {
    const mesh = `mesh_${crypto.randomUUID()}`;
    const intruder = device(mesh, "intruder", meshToken(`mesh_${crypto.randomUUID()}`));
    const failure = await intruder.connect().then(
      () => null,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(WireError);
    expect([401, 403]).toContain((failure as WireError).status);
    expect(intruder.requestCounts.get("PUT file") ?? 0).toBe(0);

    const owner = device(mesh, "owner");
    await owner.connect();
    expect(owner.generation).toBe(1);
    expect(owner.manifest?.writtenBy).toBe(owner.deviceId);
  });

  it("a push socket without a valid access_token is refused", async () => {
    const mesh = `mesh_${crypto.randomUUID()}`;
    const stranger = device(mesh, "stranger", "0".repeat(64));
    await expect(stranger.subscribe(5_000)).rejects.toThrow();
    await stranger.close();
  });
});
