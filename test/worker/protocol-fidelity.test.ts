// Protocol fidelity (issue 9): what every Interocitor client version sends is accepted with the
// protocol's answers, and what no client sends is refused. Each test names the client behaviour it
// protects. Real local R2, D1 and Durable Objects throughout.
import { createExecutionContext, env, runInDurableObject, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../worker/index";
import type { Env } from "../../worker/env";
import type { MeshHub } from "../../durable-objects/mesh-hub";
import { HttpError, type ErrorCode } from "../../worker/lib/errors";
import { bytes, deleteFile, getFile, ioUrl, newMesh, post, putFile, textOf } from "./io-support";

const ROOT = "/App";

/** Change-file names as different client versions write them (PROTOCOL.md section 3). */
const CHANGE_NAMES: [string, string][] = [
  ["a 15-digit HLC", "000001795315560-0001-devA-chg_a1.json"],
  ["a 16-digit HLC", "0001795315560016-0000-dev-chg_g1.json"],
  ["an ISO-timestamp HLC", "2026-01-01T00:00:00.000Z_0001_dev1-chg_b2.json"],
  ["an opaque HLC", "hlc.v9~zz-chg_0190a1b2-c3d4.json"],
];

const head = (hlc: string) => JSON.stringify({ latestHlc: hlc });

/** Calls the worker's fetch directly with a BUCKET that counts which R2 methods were used. */
async function callCountingR2(path: string, init: RequestInit = {}): Promise<{ res: Response; calls: string[] }> {
  const calls: string[] = [];
  const bucket = new Proxy(env.BUCKET, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver) as unknown;
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        calls.push(String(name));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`http://meshbox.test/sync${path}`, init), { ...env, LOG_REQUESTS: "0", BUCKET: bucket } as Env, ctx);
  const body = await res.arrayBuffer();
  await waitOnExecutionContext(ctx);
  return { res: new Response(res.status === 204 || res.status === 304 ? null : body, { status: res.status, headers: res.headers }), calls };
}

/** The headers HEAD must repeat from GET (everything but the per-request id). */
function comparableHeaders(res: Response): Record<string, string> {
  const out: Record<string, string> = {};
  res.headers.forEach((value, name) => {
    if (name !== "x-request-id") out[name] = value;
  });
  return out;
}

/**
 * HEAD answers with GET's status and headers. A generated JSON body has no Content-Length header
 * inside the test runtime (the wire adds it), so HEAD's must equal the GET body's byte count.
 */
async function expectHeadMatchesGet(url: string): Promise<{ get: Response; head: Response }> {
  const get = await SELF.fetch(url);
  const sent = (await get.arrayBuffer()).byteLength;
  const headRes = await SELF.fetch(url, { method: "HEAD" });
  expect(headRes.status).toBe(get.status);
  expect(comparableHeaders(headRes)).toEqual({ "content-length": String(sent), ...comparableHeaders(get) });
  expect(await headRes.text()).toBe("");
  return { get, head: headRes };
}

describe("change files of every client version (path class by the protocol's rule)", () => {
  for (const [shape, name] of CHANGE_NAMES) {
    it(`keeps the first bytes of a change file named with ${shape} when a retried flush re-sends it re-encrypted (200), so no puller sees two versions`, async () => {
      const mesh = newMesh();
      const path = `${ROOT}/changes/${name}`;
      expect((await putFile(mesh, path, "first encryption")).status).toBe(201);
      const retry = await putFile(mesh, path, "second encryption, new IV");
      expect(retry.status).toBe(200);
      expect(await retry.json()).toMatchObject({ file: { name, path, size: 16 } });
      expect(await textOf(await getFile(mesh, path))).toBe("first encryption");
    });

    it(`serves a change file named with ${shape} to an exact GET after a compaction deleted it, so a puller that listed it a moment earlier is not poisoned`, async () => {
      const mesh = newMesh();
      const path = `${ROOT}/changes/${name}`;
      expect((await putFile(mesh, path, "covered by the snapshot")).status).toBe(201);
      expect((await deleteFile(mesh, path)).status).toBe(204);
      const got = await getFile(mesh, path);
      expect(got.status).toBe(200);
      expect(await textOf(got)).toBe("covered by the snapshot");
      expect((await deleteFile(mesh, path)).status).toBe(404);
    });
  }

  it("keeps treating a file outside a changes folder as an other file (overwrite 204), whatever its name", async () => {
    const mesh = newMesh();
    const path = `${ROOT}/notes/2026-01-01T00:00:00.000Z_0001_dev1-chg_b2.json`;
    expect((await putFile(mesh, path, "one")).status).toBe(201);
    expect((await putFile(mesh, path, "two")).status).toBe(204);
    expect(await textOf(await getFile(mesh, path))).toBe("two");
  });
});

describe("PUT changes/head.json bodies", () => {
  const real = "000001795315560-0001-devA";
  const refused: [string, string | Uint8Array][] = [
    ["a U+FFFF latestHlc (sorts above every real HLC)", '{"latestHlc":"\\uffff"}'],
    ["a lone surrogate", '{"latestHlc":"\\ud800"}'],
    ["a non-ASCII letter", head("0001795315560-é")],
    ["a control character", head("000001795315560-\u0007-dev")],
    ["an empty latestHlc", head("")],
    ["a latestHlc of 1,025 characters", head("9".repeat(1025))],
    ["a number", '{"latestHlc":1795315560}'],
    ["null", '{"latestHlc":null}'],
    ["no latestHlc", "{}"],
    ["an array", `[${head(real)}]`],
    ["a bare string", JSON.stringify(real)],
    ["text that is not JSON", "latestHlc=000001795315560"],
    ["bytes that are not UTF-8", new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])],
  ];

  it("refuses every body that no client writes with 400 invalid_body and keeps the stored head, so one bad write cannot freeze head.json", async () => {
    const mesh = newMesh();
    const path = `${ROOT}/changes/head.json`;
    expect((await putFile(mesh, path, head(real))).status).toBe(201);
    for (const [what, body] of refused) {
      const res = await putFile(mesh, path, body);
      expect({ what, status: res.status }).toEqual({ what, status: 400 });
      expect(await res.json()).toEqual({
        error: "invalid_body",
        message: "head.json must be a JSON object whose latestHlc is a string of 1 to 1024 printable ASCII characters.",
      });
      expect(await textOf(await getFile(mesh, path))).toBe(head(real));
    }
    // The next real flush still moves head forward (a frozen head would answer 200 "kept").
    expect((await putFile(mesh, path, head("000001795315561-0000-devB"))).status).toBe(204);
    expect(await textOf(await getFile(mesh, path))).toBe(head("000001795315561-0000-devB"));
  });

  it("stores nothing at all when the first head.json body is refused", async () => {
    const mesh = newMesh();
    const path = `${ROOT}/changes/head.json`;
    expect((await putFile(mesh, path, '{"latestHlc":"\\uffff"}')).status).toBe(400);
    expect((await getFile(mesh, path)).status).toBe(404);
    expect((await post(mesh, "metadata", { path })).status).toBe(404);
  });

  it("thaws a head.json frozen before this check existed: a stored value of no sane shape loses to the next real flush", async () => {
    const mesh = newMesh();
    const path = `${ROOT}/changes/head.json`;
    expect((await putFile(mesh, path, head("000001795315560-0001-devA"))).status).toBe(201);
    // What an older meshbox stored for {"latestHlc":"\uffff"}: above every real HLC bytewise.
    const hub = env.MESH_HUB.get(env.MESH_HUB.idFromName(mesh));
    await runInDurableObject(hub, (_instance: MeshHub, state) => {
      state.storage.sql.exec("UPDATE control SET body = ? WHERE path = ?", bytes('{"latestHlc":"\uffff"}'), path);
    });
    expect((await putFile(mesh, path, head("000001795315561-0000-devB"))).status).toBe(204);
    expect(await textOf(await getFile(mesh, path))).toBe(head("000001795315561-0000-devB"));
  });

  it("accepts the HLC of every client version, up to 1,024 printable ASCII characters, so every client's flush can advance head", async () => {
    const hlcs = [...CHANGE_NAMES.map(([, name]) => name.slice(0, name.indexOf("-chg_"))), "~".repeat(1024), "a b"];
    for (const hlc of hlcs) {
      const res = await putFile(newMesh(), `${ROOT}/changes/head.json`, head(hlc));
      expect({ hlc, status: res.status }).toEqual({ hlc, status: 201 });
    }
  });
});

describe("HEAD wherever GET is served", () => {
  it("answers HEAD /sync/health with GET's status and headers and no body, so uptime probes that use HEAD see the service", async () => {
    const { head: res } = await expectHeadMatchesGet("http://meshbox.test/sync/health");
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Length")).toBe(String(JSON.stringify({ ok: true, service: "meshbox", auth: ["open"] }).length));
  });

  it("answers HEAD on the mesh and push health routes like GET", async () => {
    const mesh = newMesh();
    expect((await expectHeadMatchesGet(ioUrl(mesh, "health"))).head.status).toBe(200);
    expect((await expectHeadMatchesGet(`http://meshbox.test/sync/notify/${mesh}/health`)).head.status).toBe(200);
  });

  it("answers HEAD of a sync object from R2 metadata alone (no body read), with GET's ETag, Last-Modified, Content-Length and type", async () => {
    const mesh = newMesh();
    const path = `${ROOT}/changes/${CHANGE_NAMES[2]![1]}`;
    expect((await putFile(mesh, path, "ciphertext bytes")).status).toBe(201);
    const { head: res } = await expectHeadMatchesGet(ioUrl(mesh, "file", path));
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Length")).toBe("16");
    expect(res.headers.get("ETag")).toMatch(/^".+"$/);
    const counted = await callCountingR2(`/io/${mesh}/file?path=${encodeURIComponent(path)}`, { method: "HEAD" });
    expect(counted.res.status).toBe(200);
    expect(counted.calls).toEqual(["head"]);
  });

  it("answers HEAD of a control object, a missing file and a deleted change file in its grace like GET", async () => {
    const mesh = newMesh();
    const change = `${ROOT}/changes/${CHANGE_NAMES[1]![1]}`;
    expect((await putFile(mesh, `${ROOT}/changes/head.json`, head("000001795315560-0001-devA"))).status).toBe(201);
    expect((await putFile(mesh, change, "covered")).status).toBe(201);
    expect((await deleteFile(mesh, change)).status).toBe(204);
    expect((await expectHeadMatchesGet(ioUrl(mesh, "file", `${ROOT}/changes/head.json`))).head.status).toBe(200);
    expect((await expectHeadMatchesGet(ioUrl(mesh, "file", `${ROOT}/nothing-here.bin`))).head.status).toBe(404);
    expect((await expectHeadMatchesGet(ioUrl(mesh, "file", change))).head.status).toBe(200);
  });

  it("answers HEAD of a stored file from metadata without counting a read", async () => {
    const mesh = newMesh();
    const path = `${ROOT}/files/photo.png`;
    const put = await SELF.fetch(ioUrl(mesh, "stored-file", path), {
      method: "PUT",
      body: "png bytes",
      headers: { "Content-Type": "image/png", "X-Interocitor-Device-Id": "dev-1" },
    });
    expect(put.status).toBe(201);
    const counted = await callCountingR2(`/io/${mesh}/stored-file?path=${encodeURIComponent(path)}`, { method: "HEAD" });
    expect(counted.res.status).toBe(200);
    expect(counted.calls).toEqual(["head"]);
    expect(counted.res.headers.get("Content-Type")).toBe("image/png");
    expect(counted.res.headers.get("Content-Length")).toBe("9");
    const meta = await post(mesh, "stored-file-metadata", { path });
    expect(await meta.json()).toMatchObject({ file: { useCount: 0, lastAccessedAt: null } });
    expect((await expectHeadMatchesGet(ioUrl(mesh, "stored-file", `${ROOT}/files/none.png`))).head.status).toBe(404);
  });

  it("answers HEAD of a recovery wrapper from R2 metadata, and 404 for an unknown locator", async () => {
    const locator = crypto.randomUUID().replace(/-/g, "").padEnd(43, "x");
    const url = `http://meshbox.test/sync/recovery/${locator}`;
    expect((await SELF.fetch(url, { method: "PUT", body: "wrapped key" })).status).toBe(201);
    const counted = await callCountingR2(`/recovery/${locator}`, { method: "HEAD" });
    expect(counted.res.status).toBe(200);
    expect(counted.calls).toEqual(["head"]);
    expect((await expectHeadMatchesGet(url)).head.headers.get("Content-Length")).toBe("11");
    expect((await expectHeadMatchesGet(`http://meshbox.test/sync/recovery/${"y".repeat(43)}`)).head.status).toBe(404);
  });

  it("answers HEAD on the push route with GET's 426 (a HEAD cannot upgrade)", async () => {
    const mesh = newMesh();
    expect((await expectHeadMatchesGet(`http://meshbox.test/sync/notify/${mesh}`)).head.status).toBe(426);
  });

  it("answers HEAD on a POST-only route with 405, and lists HEAD beside GET in Allow and in the preflight", async () => {
    const mesh = newMesh();
    const postOnly = await SELF.fetch(ioUrl(mesh, "list-files"), { method: "HEAD" });
    expect(postOnly.status).toBe(405);
    expect(postOnly.headers.get("Allow")).toBe("POST");
    expect(await postOnly.text()).toBe("");
    const wrong = await SELF.fetch(ioUrl(mesh, "file", "/x"), { method: "PATCH" });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("Allow")).toBe("GET, PUT, DELETE, HEAD");
    expect(await wrong.json()).toEqual({ error: "method_not_allowed", message: "PATCH is not allowed here; use GET, PUT, DELETE, HEAD." });
    const preflight = await SELF.fetch(ioUrl(mesh, "file", "/x"), { method: "OPTIONS", headers: { Origin: "https://app.example" } });
    expect(preflight.headers.get("Access-Control-Allow-Methods")).toBe("GET, HEAD, PUT, POST, DELETE, OPTIONS");
  });
});

describe("X-Interocitor-Plaintext-Size on PUT stored-file", () => {
  const put = (mesh: string, size: string) =>
    SELF.fetch(ioUrl(mesh, "stored-file", `${ROOT}/files/a.bin`), {
      method: "PUT",
      body: "abc",
      headers: { "X-Interocitor-Device-Id": "dev-1", "X-Interocitor-Plaintext-Size": size },
    });

  it("refuses a present value that is not a non-negative safe integer with 400 and stores nothing, so the size the client recorded is never silently lost", async () => {
    for (const junk of ["-5", "1e309", "abc", "1.5", "+5", "0x10", "12kb", "9007199254740992", "1 2"]) {
      const mesh = newMesh();
      const res = await put(mesh, junk);
      expect({ junk, status: res.status }).toEqual({ junk, status: 400 });
      expect(await res.json()).toEqual({
        error: "bad_request",
        message: "X-Interocitor-Plaintext-Size must be a non-negative integer byte count (at most 2^53 - 1).",
      });
      expect((await env.BUCKET.list({ prefix: `f/${mesh}/` })).objects).toEqual([]);
    }
  });

  it("stores every non-negative safe integer the client sends, and a blank value as null", async () => {
    for (const [sent, stored] of [["0", 0], ["3", 3], [" 42 ", 42], ["9007199254740991", 9007199254740991], ["", null]] as const) {
      const res = await put(newMesh(), sent);
      expect(res.status).toBe(201);
      expect(await res.json()).toMatchObject({ file: { plaintextSize: stored } });
    }
  });

  it("still refuses a blank X-Interocitor-Device-Id with 400, as the real client always sends its device id", async () => {
    const res = await SELF.fetch(ioUrl(newMesh(), "stored-file", `${ROOT}/files/a.bin`), {
      method: "PUT",
      body: "abc",
      headers: { "X-Interocitor-Device-Id": "  " },
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: "bad_request", message: "X-Interocitor-Device-Id is required and must not be blank." });
  });
});

describe("content types", () => {
  it("serves every sync object as application/octet-stream whatever its writer declared, so a client reads ciphertext as bytes", async () => {
    const mesh = newMesh();
    const objects: [string, string][] = [
      [`${ROOT}/changes/${CHANGE_NAMES[0]![1]}`, "application/x-www-form-urlencoded"],
      [`${ROOT}/pairing/offer.json`, "text/plain"],
      [`${ROOT}/mainline/snapshot-2-server_relay_1.json`, "application/json"],
      [`${ROOT}/devices/devA.json`, "application/json"],
      [`${ROOT}/changes/head.json`, "application/json"],
    ];
    for (const [path, declared] of objects) {
      const body = path.endsWith("head.json") ? head("000001795315560-0001-devA") : '{"v":1}';
      expect((await putFile(mesh, path, body, { "Content-Type": declared })).status).toBe(201);
      const got = await getFile(mesh, path);
      expect({ path, type: got.headers.get("Content-Type") }).toEqual({ path, type: "application/octet-stream" });
      expect(await textOf(got)).toBe(body);
    }
  });

  it("serves a stored file with the type it was uploaded with", async () => {
    const mesh = newMesh();
    const path = `${ROOT}/files/doc.pdf`;
    await SELF.fetch(ioUrl(mesh, "stored-file", path), {
      method: "PUT",
      body: bytes("%PDF"),
      headers: { "Content-Type": "application/pdf", "X-Interocitor-Device-Id": "dev-1" },
    });
    const got = await SELF.fetch(ioUrl(mesh, "stored-file", path));
    expect(got.headers.get("Content-Type")).toBe("application/pdf");
    expect(await textOf(got)).toBe("%PDF");
  });
});

describe("CORS", () => {
  it("exposes X-Request-Id besides ETag, so a browser app can put the id in an error report", async () => {
    const res = await SELF.fetch(ioUrl(newMesh(), "file", `${ROOT}/missing.bin`), { headers: { Origin: "https://app.example" } });
    expect(res.status).toBe(404);
    const exposed = (res.headers.get("Access-Control-Expose-Headers") ?? "").split(",").map((h) => h.trim());
    expect(exposed).toEqual(expect.arrayContaining(["ETag", "X-Request-Id"]));
    expect(res.headers.get("X-Request-Id")).toMatch(/^[A-Za-z0-9-]{1,64}$/);
  });
});

describe("error codes", () => {
  it("map to the statuses of PROTOCOL.md section 7", () => {
    const table: Record<Exclude<ErrorCode, "internal_error">, number> = {
      bad_request: 400,
      invalid_body: 400,
      invalid_path: 400,
      invalid_mesh_id: 400,
      unauthorized: 401,
      forbidden: 403,
      not_found: 404,
      method_not_allowed: 405,
      conflict: 409,
      precondition_failed: 412,
      payload_too_large: 413,
      upgrade_required: 426,
      rate_limited: 429,
      unavailable: 503,
      auth_not_configured: 503,
      index_moving: 503,
    };
    for (const [code, status] of Object.entries(table)) {
      expect({ code, status: new HttpError(code as ErrorCode, "m").status }).toEqual({ code, status });
    }
  });
});
