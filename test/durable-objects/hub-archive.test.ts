// The hub's archive RPCs: exportState reads the committed state (candidates left out) and
// installState puts it into an empty hub all or nothing, with the write rules in force after.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ArchivedControl } from "../../durable-objects/hub-api";

const newMesh = () => `hub-archive-${crypto.randomUUID()}`;
const hubOf = (mesh: string) => env.MESH_HUB.get(env.MESH_HUB.idFromName(mesh));
const enc = new TextEncoder();

async function sha256(bytes: Uint8Array): Promise<string> {
  return Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function item(path: string, cls: ArchivedControl["cls"], text: string, state: "committed" | null = null): Promise<ArchivedControl> {
  const body = enc.encode(text);
  return { path, cls, body, sha256: await sha256(body), modifiedAt: 1_700_000_000_000, state };
}

const generation = (epoch: number) => JSON.stringify({ version: 3, epoch, snapshotPath: null });
const pointer = (n: number) => JSON.stringify({ currentGeneration: n, file: `manifest-${n}.json` });

async function committedMesh(): Promise<string> {
  const mesh = newMesh();
  const hub = hubOf(mesh);
  for (const [path, cls, body] of [
    ["/App/manifest-1.json", "generation", generation(1)],
    ["/App/manifest.json", "manifest", pointer(1)],
    ["/App/manifest-2.json", "generation", generation(2)],
    ["/App/changes/head.json", "head", JSON.stringify({ latestHlc: "0009" })],
  ] as const) {
    const result = await hub.putControl(mesh, path, cls, enc.encode(body), undefined, 60_000);
    expect(result.ok).toBe(true);
  }
  return mesh;
}

describe("MeshHub exportState / installState", () => {
  it("exports committed generations, the pointer and head, but not a candidate generation", async () => {
    const state = await hubOf(await committedMesh()).exportState();
    expect(state.control.map((c) => [c.path, c.cls, c.state])).toEqual([
      ["/App/changes/head.json", "head", null],
      ["/App/manifest-1.json", "generation", "committed"],
      ["/App/manifest.json", "manifest", null],
    ]);
    expect(state.roots).toEqual([{ root: "/App", generation: 1, snapshotPath: null }]);
    expect(state.snapshots).toEqual([]);
  });

  it("installs into an empty hub with the CAS in force: the committed generation is immutable, the pointer moves on", async () => {
    const source = await hubOf(await committedMesh()).exportState();
    const mesh = newMesh();
    const hub = hubOf(mesh);
    expect(await hub.claimImport(mesh, "t1", 60_000)).toEqual({ ok: true });
    const installed = await hub.installState(mesh, "t1", source.control, source.roots, source.snapshots);
    expect(installed.ok).toBe(true);
    expect((await hub.stats()).currentGeneration).toBe(1);
    const immutable = await hub.putControl(mesh, "/App/manifest-1.json", "generation", enc.encode(generation(7)), undefined, 60_000);
    expect(immutable).toEqual({ ok: false, code: "conflict", message: "manifest-1.json is committed and immutable; different bytes are refused." });
    const lower = await hub.putControl(mesh, "/App/manifest.json", "manifest", enc.encode(JSON.stringify({ currentGeneration: 0, file: "manifest-0.json" })), undefined, 60_000);
    expect(lower.ok).toBe(false);
    const read = await hub.readControl(mesh, "/App/manifest.json");
    expect(new TextDecoder().decode(read!.body)).toBe(pointer(1));
    expect(read!.record.modifiedAt).toBe(source.control.find((c) => c.path === "/App/manifest.json")!.modifiedAt);
    expect((await hub.putControl(mesh, "/App/manifest-2.json", "generation", enc.encode(generation(2)), undefined, 60_000)).ok).toBe(true);
    expect((await hub.putControl(mesh, "/App/manifest.json", "manifest", enc.encode(pointer(2)), undefined, 60_000)).ok).toBe(true);
  });

  it("refuses a non-empty hub, a hash mismatch, a candidate generation and a pointer without its root, leaving nothing", async () => {
    const source = await hubOf(await committedMesh()).exportState();
    const busy = await committedMesh();
    expect(await hubOf(busy).claimImport(busy, "t1", 60_000)).toEqual({ ok: false, code: "conflict", message: "The mesh's hub is not empty." });
    expect(await hubOf(busy).installState(busy, "t1", source.control, source.roots, [])).toEqual({
      ok: false,
      code: "conflict",
      message: "The mesh's hub is not empty.",
    });

    const mesh = newMesh();
    const hub = hubOf(mesh);
    expect(await hub.installState(mesh, "unclaimed", source.control, source.roots, [])).toEqual({
      ok: false,
      code: "conflict",
      message: "This import no longer holds the mesh (another import or a wipe took it over).",
    });
    expect(await hub.claimImport(mesh, "t1", 60_000)).toEqual({ ok: true });
    expect(await hub.claimImport(mesh, "t2", 60_000)).toEqual({
      ok: false,
      code: "conflict",
      message: "Another import into this mesh is running; wait for it, or import with --replace.",
    });
    const tampered = source.control.map((c) => (c.cls === "head" ? { ...c, body: enc.encode("{}") } : c));
    expect(await hub.installState(mesh, "t1", tampered, source.roots, [])).toEqual({
      ok: false,
      code: "bad_request",
      message: "The bytes of /App/changes/head.json do not match their SHA-256.",
    });
    const candidate = [...source.control, await item("/App/manifest-5.json", "generation", generation(5))];
    expect(await hub.installState(mesh, "t1", candidate, source.roots, [])).toEqual({
      ok: false,
      code: "bad_request",
      message: "/App/manifest-5.json is a generation candidate; an archive holds only committed generations.",
    });
    expect(await hub.installState(mesh, "t1", source.control, [], [])).toEqual({
      ok: false,
      code: "bad_request",
      message: "/App/manifest.json does not name a committed generation of its root in this archive.",
    });
    expect(await hub.isEmpty()).toBe(true);
  });
});
