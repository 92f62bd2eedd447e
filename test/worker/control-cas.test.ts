// The manifest CAS, generation and snapshot leases, and the head.json max-register, through the
// real /file route (PROTOCOL.md section 3), with the real hub, D1 and R2 bindings.
import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { putControlObject } from "../../worker/objects/control-objects";
import { putSnapshot } from "../../worker/objects/snapshots";

const IO = "http://meshbox.test/sync/io";
const ROOT = "/MyApp";

const newMesh = () => `cas-${crypto.randomUUID()}`;
const fileUrl = (mesh: string, path: string) => `${IO}/${mesh}/file?path=${encodeURIComponent(path)}`;

async function put(mesh: string, path: string, body: string, headers: Record<string, string> = {}) {
  const res = await SELF.fetch(fileUrl(mesh, path), { method: "PUT", body, headers });
  const text = await res.text();
  return { status: res.status, etag: res.headers.get("ETag"), text };
}

async function get(mesh: string, path: string) {
  const res = await SELF.fetch(fileUrl(mesh, path));
  return { status: res.status, etag: res.headers.get("ETag"), text: await res.text() };
}

async function del(mesh: string, path: string, headers: Record<string, string> = {}) {
  const res = await SELF.fetch(fileUrl(mesh, path), { method: "DELETE", headers });
  return { status: res.status, text: await res.text() };
}

const pointer = (n: number) => JSON.stringify({ currentGeneration: n, file: `manifest-${n}.json` }, null, 2);
const generation = (n: number, snapshotPath: string | null, writtenBy = "dev-a") =>
  JSON.stringify({ version: 3, meshId: "m", epoch: n, snapshotPath, encrypted: true, writtenBy });
const snapshotPath = (epoch: number) => `${ROOT}/mainline/snapshot-${epoch}-server_relay_1.json`;

/** Bootstraps generation 1 (no snapshot) the way a first device does. */
async function bootstrap(mesh: string) {
  expect((await put(mesh, `${ROOT}/manifest-1.json`, generation(1, null))).status).toBe(201);
  expect((await put(mesh, `${ROOT}/manifest.json`, pointer(1))).status).toBe(201);
}

/** One full compaction to generation n, as CLIENT.md describes. */
async function compact(mesh: string, n: number, who = "dev-a") {
  expect((await put(mesh, snapshotPath(n), `snapshot ${n} by ${who}`)).status).toBe(201);
  expect((await put(mesh, `${ROOT}/manifest-${n}.json`, generation(n, snapshotPath(n), who))).status).toBe(201);
  expect((await put(mesh, `${ROOT}/manifest.json`, pointer(n))).status).toBe(204);
}

describe("PUT manifest.json (pointer)", () => {
  it("accepts a first pointer naming an existing generation with 201 and serves its bytes verbatim", async () => {
    const mesh = newMesh();
    await bootstrap(mesh);
    const read = await get(mesh, `${ROOT}/manifest.json`);
    expect(read.status).toBe(200);
    expect(read.text).toBe(pointer(1));
  });

  it("refuses a dangling pointer (its manifest-<n>.json does not exist) with 409", async () => {
    const mesh = newMesh();
    const res = await put(mesh, `${ROOT}/manifest.json`, pointer(1));
    expect(res.status).toBe(409);
    expect(JSON.parse(res.text)).toEqual({ error: "conflict", message: "manifest.json names manifest-1.json, which does not exist." });
    expect((await get(mesh, `${ROOT}/manifest.json`)).status).toBe(404);
  });

  it("refuses malformed pointer JSON with 400", async () => {
    const mesh = newMesh();
    await put(mesh, `${ROOT}/manifest-1.json`, generation(1, null));
    for (const body of ["not json", "[]", JSON.stringify({ currentGeneration: "1", file: "manifest-1.json" }),
      JSON.stringify({ currentGeneration: 1, file: "manifest-2.json" }), JSON.stringify({ currentGeneration: 1.5, file: "manifest-1.json" })]) {
      const res = await put(mesh, `${ROOT}/manifest.json`, body);
      expect(res.status).toBe(400);
      expect(JSON.parse(res.text)).toMatchObject({ error: "bad_request" });
    }
  });

  it("accepts `file` as a full path in the pointer's folder, and refuses one outside it with 400", async () => {
    const mesh = newMesh();
    await put(mesh, `${ROOT}/manifest-1.json`, generation(1, null));
    const outside = await put(mesh, `${ROOT}/manifest.json`, JSON.stringify({ currentGeneration: 1, file: "/Elsewhere/manifest-1.json" }));
    expect(outside.status).toBe(400);
    const dotted = await put(mesh, `${ROOT}/manifest.json`, JSON.stringify({ currentGeneration: 1, file: "../manifest-1.json" }));
    expect(dotted.status).toBe(400);
    const full = await put(mesh, `${ROOT}/manifest.json`, JSON.stringify({ currentGeneration: 1, file: `${ROOT}/manifest-1.json` }));
    expect(full.status).toBe(201);
  });

  it("answers 200 for an equal generation with identical bytes and 409 for different bytes", async () => {
    const mesh = newMesh();
    await bootstrap(mesh);
    expect((await put(mesh, `${ROOT}/manifest.json`, pointer(1))).status).toBe(200);
    const other = JSON.stringify({ currentGeneration: 1, file: "manifest-1.json" });
    const res = await put(mesh, `${ROOT}/manifest.json`, other);
    expect(res.status).toBe(409);
    expect(JSON.parse(res.text)).toEqual({
      error: "conflict",
      message: "manifest.json is already at generation 1 with different bytes.",
    });
  });

  it("refuses a lower generation with 409 and keeps the stored pointer", async () => {
    const mesh = newMesh();
    await bootstrap(mesh);
    await compact(mesh, 2);
    await compact(mesh, 3);
    const res = await put(mesh, `${ROOT}/manifest.json`, pointer(2));
    expect(res.status).toBe(409);
    expect(JSON.parse(res.text)).toEqual({
      error: "conflict",
      message: "manifest.json is at generation 3; generation 2 is lower.",
    });
    expect((await get(mesh, `${ROOT}/manifest.json`)).text).toBe(pointer(3));
  });

  it("refuses a re-bootstrap against a live mesh: manifest-1.json with other bytes and a generation-1 pointer both 409", async () => {
    const mesh = newMesh();
    await bootstrap(mesh);
    await compact(mesh, 2);
    // The client read manifest.json as failed and starts over, as CLIENT.md step 3 describes.
    const gen1 = await put(mesh, `${ROOT}/manifest-1.json`, generation(1, null, "dev-new"));
    expect(gen1.status).toBe(409);
    expect(JSON.parse(gen1.text)).toEqual({ error: "conflict", message: "manifest-1.json is committed and immutable; different bytes are refused." });
    expect((await put(mesh, `${ROOT}/manifest.json`, pointer(1))).status).toBe(409);
    expect((await get(mesh, `${ROOT}/manifest.json`)).text).toBe(pointer(2));
    expect((await get(mesh, `${ROOT}/manifest-1.json`)).text).toBe(generation(1, null));
  });

  it("keeps roots of one mesh independent", async () => {
    const mesh = newMesh();
    await bootstrap(mesh);
    await compact(mesh, 2);
    expect((await put(mesh, `/Other/manifest-1.json`, generation(1, null))).status).toBe(201);
    expect((await put(mesh, `/Other/manifest.json`, pointer(1))).status).toBe(201);
  });

  it("lists the pointer with the same etag GET serves", async () => {
    const mesh = newMesh();
    await bootstrap(mesh);
    const read = await get(mesh, `${ROOT}/manifest.json`);
    const res = await SELF.fetch(`${IO}/${mesh}/list-files`, { method: "POST", body: JSON.stringify({ path: ROOT }) });
    const { files } = (await res.json()) as { files: { name: string; etag: string; size: number }[] };
    expect(files.find((f) => f.name === "manifest.json")).toMatchObject({ etag: read.etag, size: pointer(1).length });
  });
});

describe("PUT manifest-<n>.json (generation)", () => {
  it("answers 409 to a different-bytes candidate while the first one's lease is live, 200 to identical bytes", async () => {
    const mesh = newMesh();
    await bootstrap(mesh);
    expect((await put(mesh, `${ROOT}/manifest-2.json`, generation(2, null, "dev-a"))).status).toBe(201);
    expect((await put(mesh, `${ROOT}/manifest-2.json`, generation(2, null, "dev-a"))).status).toBe(200);
    const loser = await put(mesh, `${ROOT}/manifest-2.json`, generation(2, null, "dev-b"));
    expect(loser.status).toBe(409);
    expect(JSON.parse(loser.text)).toEqual({
      error: "conflict",
      message: "Another compactor's candidate manifest-2.json holds the lease; different bytes are refused.",
    });
    expect((await get(mesh, `${ROOT}/manifest-2.json`)).text).toBe(generation(2, null, "dev-a"));
  });

  it("lets a retry replace a candidate once its lease lapsed (204)", async () => {
    const mesh = newMesh();
    const shortLease = { ...env, CANDIDATE_LEASE_MS: "0" };
    const enc = new TextEncoder();
    const first = await putControlObject(shortLease, mesh, `${ROOT}/manifest-1.json`, "generation", enc.encode("a"), {});
    expect(first.status).toBe(201);
    const retry = await putControlObject(shortLease, mesh, `${ROOT}/manifest-1.json`, "generation", enc.encode("b"), {});
    expect(retry).toMatchObject({ status: 204, changed: true });
    expect((await get(mesh, `${ROOT}/manifest-1.json`)).text).toBe("b");
  });

  it("keeps a committed generation immutable even after its lease would have lapsed", async () => {
    const mesh = newMesh();
    const shortLease = { ...env, CANDIDATE_LEASE_MS: "0" };
    const enc = new TextEncoder();
    await putControlObject(shortLease, mesh, `${ROOT}/manifest-1.json`, "generation", enc.encode(generation(1, null)), {});
    await putControlObject(shortLease, mesh, `${ROOT}/manifest.json`, "manifest", enc.encode(pointer(1)), {});
    await expect(
      putControlObject(shortLease, mesh, `${ROOT}/manifest-1.json`, "generation", enc.encode("other"), {}),
    ).rejects.toMatchObject({ status: 409, code: "conflict" });
    const same = await putControlObject(shortLease, mesh, `${ROOT}/manifest-1.json`, "generation", enc.encode(generation(1, null)), {});
    expect(same).toMatchObject({ status: 200, changed: false });
  });

  it("refuses a new candidate at or below the committed generation with 409", async () => {
    const mesh = newMesh();
    await bootstrap(mesh);
    await compact(mesh, 3);
    expect((await put(mesh, `${ROOT}/manifest-2.json`, generation(2, null))).status).toBe(409);
  });
});

describe("PUT changes/head.json", () => {
  const head = (hlc: string) => JSON.stringify({ latestHlc: hlc });
  const hlc = (ms: number, device: string) => `${String(ms).padStart(15, "0")}-0000-${device}`;

  it("creates with 201, moves forward with 204, and never goes backwards (lower or equal: 200, value kept)", async () => {
    const mesh = newMesh();
    const path = `${ROOT}/changes/head.json`;
    expect((await put(mesh, path, head(hlc(100, "a")))).status).toBe(201);
    expect((await put(mesh, path, head(hlc(200, "b")))).status).toBe(204);
    expect((await put(mesh, path, head(hlc(150, "c")))).status).toBe(200);
    expect((await put(mesh, path, JSON.stringify({ latestHlc: hlc(200, "b") }, null, 2))).status).toBe(200);
    expect((await get(mesh, path)).text).toBe(head(hlc(200, "b")));
  });

  it("ends at the maximum of many concurrent writers, each told 201/204 or 200", async () => {
    const mesh = newMesh();
    const path = `${ROOT}/changes/head.json`;
    const values = Array.from({ length: 24 }, (_, i) => hlc(1_000 + ((i * 7919) % 97), `d${i}`));
    const results = await Promise.all(values.map((v) => put(mesh, path, head(v))));
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(results.every((r) => [200, 201, 204].includes(r.status))).toBe(true);
    const max = [...values].sort().at(-1)!;
    expect((await get(mesh, path)).text).toBe(head(max));
  });

  it("refuses a head without a string latestHlc with 400", async () => {
    const mesh = newMesh();
    const res = await put(mesh, `${ROOT}/changes/head.json`, JSON.stringify({ latestHlc: 5 }));
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text)).toEqual({
      error: "invalid_body",
      message: "head.json must be a JSON object whose latestHlc is a string of 1 to 1024 printable ASCII characters.",
    });
  });
});

describe("PUT devices/<id>.json", () => {
  it("creates with 201 and overwrites with 204", async () => {
    const mesh = newMesh();
    const path = `${ROOT}/devices/dev-a.json`;
    expect((await put(mesh, path, "{\"v\":1}")).status).toBe(201);
    expect((await put(mesh, path, "{\"v\":2}")).status).toBe(204);
    expect((await get(mesh, path)).text).toBe("{\"v\":2}");
  });
});

describe("PUT with If-Match / If-None-Match on control objects", () => {
  it("answers 412 when If-Match does not match and when If-None-Match: * finds the object", async () => {
    const mesh = newMesh();
    const path = `${ROOT}/devices/dev-a.json`;
    const created = await put(mesh, path, "{}", { "If-None-Match": "*" });
    expect(created.status).toBe(201);
    const again = await put(mesh, path, "{}", { "If-None-Match": "*" });
    expect(again.status).toBe(412);
    expect(JSON.parse(again.text)).toEqual({ error: "precondition_failed", message: "If-None-Match failed: the object exists." });
    const stale = await put(mesh, path, "{\"x\":1}", { "If-Match": "\"nope\"" });
    expect(stale.status).toBe(412);
    expect((await put(mesh, path, "{\"x\":1}", { "If-Match": created.etag! })).status).toBe(204);
    expect((await get(mesh, path)).text).toBe("{\"x\":1}");
  });

  it("answers 412 on a snapshot when If-Match does not match or If-None-Match: * finds it", async () => {
    const mesh = newMesh();
    const path = snapshotPath(2);
    const created = await put(mesh, path, "snap", { "If-None-Match": "*" });
    expect(created.status).toBe(201);
    expect((await put(mesh, path, "snap", { "If-None-Match": "*" })).status).toBe(412);
    expect((await put(mesh, path, "snap", { "If-Match": "\"stale\"" })).status).toBe(412);
    expect((await put(mesh, path, "snap", { "If-Match": created.etag! })).status).toBe(200);
  });

  it("answers 412 for If-Match on a pointer that does not exist yet", async () => {
    const mesh = newMesh();
    await put(mesh, `${ROOT}/manifest-1.json`, generation(1, null));
    const res = await put(mesh, `${ROOT}/manifest.json`, pointer(1), { "If-Match": "\"x\"" });
    expect(res.status).toBe(412);
  });
});

describe("PUT mainline/<snapshot>", () => {
  it("answers 201, then 200 for identical bytes and 409 for different bytes while the lease is live", async () => {
    const mesh = newMesh();
    const path = snapshotPath(2);
    expect((await put(mesh, path, "winner bytes")).status).toBe(201);
    expect((await put(mesh, path, "winner bytes")).status).toBe(200);
    const loser = await put(mesh, path, "loser bytes");
    expect(loser.status).toBe(409);
    expect((await get(mesh, path)).text).toBe("winner bytes");
  });

  it("gives exactly one of two concurrent different-bytes PUTs a 2xx, and R2 keeps the winner's bytes", async () => {
    const mesh = newMesh();
    const path = snapshotPath(2);
    const bodies = Array.from({ length: 8 }, (_, i) => `candidate ${i} `.repeat(2000));
    const results = await Promise.all(bodies.map((b) => put(mesh, path, b)));
    const winners = results.map((r, i) => ({ ...r, i })).filter((r) => r.status >= 200 && r.status < 300);
    expect(winners).toHaveLength(1);
    expect(results.filter((r) => r.status === 409)).toHaveLength(7);
    expect((await get(mesh, path)).text).toBe(bodies[winners[0]!.i]);
  });

  it("answers 200 to concurrent identical PUTs once the owner's upload finished", async () => {
    const mesh = newMesh();
    const path = snapshotPath(2);
    const body = "same bytes ".repeat(5000);
    const results = await Promise.all(Array.from({ length: 4 }, () => put(mesh, path, body)));
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 200, 201]);
  });

  it("lets a retry replace a candidate snapshot once its lease lapsed (204)", async () => {
    const mesh = newMesh();
    const shortLease = { ...env, CANDIDATE_LEASE_MS: "0" };
    const path = snapshotPath(2);
    const req = (body: string) => new Request("http://x/", { method: "PUT", body });
    expect((await putSnapshot(shortLease, mesh, path, req("first"), {})).status).toBe(201);
    expect((await putSnapshot(shortLease, mesh, path, req("second"), {})).status).toBe(204);
    expect((await get(mesh, path)).text).toBe("second");
  });

  it("never lets an owner whose lease lapsed mid-upload overwrite the next owner's bytes", async () => {
    const mesh = newMesh();
    const shortLease = { ...env, CANDIDATE_LEASE_MS: "0" };
    const path = snapshotPath(2);
    let reading!: () => void;
    let release!: () => void;
    const started = new Promise<void>((r) => (reading = r));
    const gate = new Promise<void>((r) => (release = r));
    const slow = new ReadableStream<Uint8Array>({
      async pull(controller) {
        reading();
        await gate;
        controller.enqueue(new TextEncoder().encode("late owner"));
        controller.close();
      },
    });
    const late = putSnapshot(shortLease, mesh, path, new Request("http://x/", { method: "PUT", body: slow }), {});
    const lateOutcome = late.then(
      () => null,
      (err: unknown) => err,
    );
    await started;
    const next = await putSnapshot(shortLease, mesh, path, new Request("http://x/", { method: "PUT", body: "next owner" }), {});
    expect(next.status).toBe(201);
    release();
    expect(await lateOutcome).toMatchObject({ status: 409, code: "conflict" });
    expect((await get(mesh, path)).text).toBe("next owner");
  });

  it("keeps a committed snapshot immutable: identical 200, different 409", async () => {
    const mesh = newMesh();
    await bootstrap(mesh);
    await compact(mesh, 2);
    expect((await put(mesh, snapshotPath(2), "snapshot 2 by dev-a")).status).toBe(200);
    const res = await put(mesh, snapshotPath(2), "rewritten");
    expect(res.status).toBe(409);
    expect(JSON.parse(res.text)).toEqual({
      error: "conflict",
      message: `${snapshotPath(2)} is a committed snapshot and is immutable; different bytes are refused.`,
    });
  });

  it("refuses a body over the snapshot limit with 413 and releases the lease", async () => {
    const mesh = newMesh();
    const limited = { ...env, LIMIT_SNAPSHOT_BYTES: "4" };
    await expect(
      putSnapshot(limited, mesh, snapshotPath(2), new Request("http://x/", { method: "PUT", body: "12345" }), {}),
    ).rejects.toMatchObject({ status: 413, code: "payload_too_large" });
    // The refused upload released its lease: a correct retry becomes the owner at once.
    expect((await put(mesh, snapshotPath(2), "ok")).status).toBe(201);
  });
});

describe("DELETE mainline/<snapshot>", () => {
  it("answers 409 for the snapshot the committed manifest names and 204 for an older one", async () => {
    const mesh = newMesh();
    await bootstrap(mesh);
    await compact(mesh, 2);
    await compact(mesh, 3);
    const live = await del(mesh, snapshotPath(3));
    expect(live.status).toBe(409);
    expect(JSON.parse(live.text)).toEqual({
      error: "conflict",
      message: `${snapshotPath(3)} is the snapshot the committed manifest names; it cannot be deleted.`,
    });
    expect((await del(mesh, snapshotPath(2))).status).toBe(204);
    expect((await get(mesh, snapshotPath(2))).status).toBe(404);
    expect((await get(mesh, snapshotPath(3))).status).toBe(200);
  });

  it("refuses a recursive delete of the mainline folder that holds the live snapshot", async () => {
    const mesh = newMesh();
    await bootstrap(mesh);
    await compact(mesh, 2);
    expect((await del(mesh, `${ROOT}/mainline`)).status).toBe(409);
    expect((await get(mesh, snapshotPath(2))).status).toBe(200);
  });
});

describe("DELETE control objects", () => {
  it("deletes a device record (204) and then answers 404; listings drop it", async () => {
    const mesh = newMesh();
    const path = `${ROOT}/devices/dev-a.json`;
    await put(mesh, path, "{}");
    expect((await del(mesh, path)).status).toBe(204);
    expect((await get(mesh, path)).status).toBe(404);
    expect((await del(mesh, path)).status).toBe(404);
    const res = await SELF.fetch(`${IO}/${mesh}/list-files`, { method: "POST", body: JSON.stringify({ path: `${ROOT}/devices` }) });
    expect(await res.json()).toEqual({ files: [] });
  });
});
