// Property-based fuzzing of every route through SELF.fetch (fast-check, fixed seed, bounded runs):
// random paths (unicode, dots, slashes, control characters, huge), mesh ids, header values and
// bodies. Properties: a client's request never yields a 500 (nor any 5xx on the IO routes, which
// run in open mode against healthy local bindings); every error is the JSON `{ error, message }`
// body; and every R2 key in the bucket afterwards is exactly the key of a write addressed to that
// same mesh (`m/<mesh>/` or `f/<mesh>/`), never another mesh's prefix.
import { env, SELF } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { normalizePath } from "../../worker/lib/paths";

const ORIGIN = "http://meshbox.test/sync";
const SEED = 20_261_122;
const RUNS = 200;
const fcOptions = { seed: SEED, numRuns: RUNS, endOnFailure: true } as const;
/** Bounded, but roomy: the machine is shared, and a failure shrinks before it reports. */
const TIMEOUT_MS = 120_000;

// ---------------------------------------------------------------------------------------------
// Arbitraries

/** A handful of valid meshes so that writes land (and could collide), plus garbage. */
const KNOWN_MESHES = ["main", "a", "a.b", "a~", "b", "mesh_0f0e4c1c-6d8b-4c5e-9a57-1c9f2f3b4d5e", "Z9-_.~x"];

const validMesh = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...KNOWN_MESHES) },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._~-]{0,40}$/) },
);

const anyMesh = fc.oneof(
  { weight: 6, arbitrary: validMesh },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 10 }) },
  { weight: 1, arbitrary: fc.constantFrom("", ".", "..", "-a", "_a", "a/b", "a%2Fb", "a b", "m/x", "a\u0000", "é", "x".repeat(129), "x".repeat(128)) },
);

const hlc = fc
  .tuple(fc.integer({ min: 0, max: 999_999_999_999_999 }), fc.integer({ min: 0, max: 0xffff }), fc.stringMatching(/^[a-z0-9_]{1,12}$/))
  .map(([ms, c, d]) => `${String(ms).padStart(15, "0")}-${c.toString(16).padStart(4, "0")}-${d}`);

const segment = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom("MyApp", "changes", "mainline", "devices", "files", "head.json", "manifest.json", "manifest-1.json", "manifest-2.json", "snapshot-1-server_relay_1.json", "notes", "x.bin") },
  { weight: 2, arbitrary: hlc.map((h) => `${h}-chg_${"0".repeat(8)}.json`) },
  { weight: 2, arbitrary: fc.constantFrom(".", "..", "...", ".hidden", "a\\b", "%2e%2e", "%2F", "?", "#", "&path=/x", " ", "\u202e", "\ufeff", "😀", "名前", "\u0000", "\u001f", "\u007f", "\u0085", "\u2028") },
  { weight: 3, arbitrary: fc.string({ unit: "grapheme", minLength: 1, maxLength: 12 }) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 12 }) },
);

/** Paths that a real client would send, so that enough fuzzed writes land. */
const plausiblePath = fc
  .tuple(
    fc.constantFrom("/MyApp", "/Other", "MyApp", "//MyApp"),
    fc.array(fc.oneof(fc.constantFrom("changes", "mainline", "devices", "files", "notes"), fc.stringMatching(/^[A-Za-z0-9_-]{1,10}$/), fc.string({ unit: "grapheme", minLength: 1, maxLength: 6 }).filter((x) => !x.includes("/") && x !== "." && x !== "..")), { maxLength: 3 }),
    fc.oneof(hlc.map((h) => `${h}-chg_${"1".repeat(8)}.json`), fc.stringMatching(/^[A-Za-z0-9_.-]{1,16}$/).filter((x) => x !== "." && x !== "..")),
  )
  .map(([root, middle, name]) => [root, ...middle, name].join("/"));

const pathArb = fc.oneof(
  { weight: 4, arbitrary: plausiblePath },
  { weight: 8, arbitrary: fc.tuple(fc.array(segment, { minLength: 0, maxLength: 7 }), fc.constantFrom("/", "//", "/./", "/"), fc.boolean(), fc.boolean()).map(
    ([segments, sep, lead, trail]) => `${lead ? "/" : ""}${segments.join(sep)}${trail ? "/" : ""}`,
  ) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 1100 }).map((n) => `/MyApp/${"a".repeat(n)}`) },
  { weight: 1, arbitrary: fc.integer({ min: 300, max: 600 }).map((n) => `/MyApp/${"é".repeat(n)}`) },
  { weight: 1, arbitrary: fc.constantFrom("", "/", "//", "\\", "/..", "/MyApp/../../other/x", "/MyApp/./x") },
);

/** Header values a real HTTP client can send (visible ASCII and Latin-1, no CR/LF/NUL). */
const headerValue = fc.oneof(
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 80 }),
  fc.constantFrom("", "*", '"abc"', "W/\"x\"", "0", "-1", "1e9", "99999999999999999999", "a".repeat(64), "A".repeat(64), "0".repeat(64)),
);

const someHeaders = fc.record(
  {
    "Content-Type": headerValue,
    "X-Interocitor-Device-Id": headerValue,
    "X-Interocitor-Plaintext-Size": headerValue,
    "X-Interocitor-Taint": headerValue,
    "X-Interocitor-Seal-Guard": headerValue,
    "If-Match": headerValue,
    "If-None-Match": headerValue,
    Upgrade: fc.constantFrom("websocket", "h2c", ""),
  },
  { requiredKeys: [] },
);

/** Half the time no extra headers at all (as the real client sends), else any mix. */
const optionalHeaders = fc.oneof(fc.constant({} as Record<string, string>), someHeaders);

const pointerLike = fc.record({ currentGeneration: fc.oneof(fc.integer({ min: -3, max: 5 }), fc.double(), fc.string()), file: fc.oneof(fc.constantFrom("manifest-1.json", "manifest-2.json", "../x", ""), fc.string()) }, { requiredKeys: [] });
const headLike = fc.record({ latestHlc: fc.oneof(hlc, fc.string(), fc.integer()) }, { requiredKeys: [] });
const manifestLike = fc.record(
  {
    version: fc.constantFrom(3, 2, "3"),
    meshId: fc.string(),
    epoch: fc.oneof(fc.integer({ min: -1, max: 5 }), fc.string()),
    snapshotPath: fc.oneof(fc.constant(null), fc.constant("/MyApp/mainline/snapshot-1-server_relay_1.json"), fc.string()),
    encrypted: fc.boolean(),
    contentHash: fc.string(),
  },
  { requiredKeys: [] },
);

const putBody = fc.oneof(
  fc.uint8Array({ maxLength: 2048 }),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  pointerLike.map((v) => JSON.stringify(v)),
  headLike.map((v) => JSON.stringify(v)),
  manifestLike.map((v) => JSON.stringify(v)),
  fc.string({ unit: "grapheme", maxLength: 200 }),
);

const postBody = fc.oneof(
  { weight: 4, arbitrary: pathArb.map((path) => JSON.stringify({ path })) },
  { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.anything().map((v) => { try { return JSON.stringify(v) ?? "null"; } catch { return "{"; } }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 256 }) },
  { weight: 1, arbitrary: fc.constantFrom("", "{", "[]", "null", '{"path":null}', '{"path":1}', '{"path":["/a"]}', '{"path":"/a","path":"/b"}', "\uFEFF{\"path\":\"/a\"}", `{"path":"${"a".repeat(20_000)}"}`) },
);

const method = fc.constantFrom("GET", "PUT", "DELETE", "POST", "PATCH", "HEAD", "OPTIONS");

// ---------------------------------------------------------------------------------------------
// Request plumbing and bookkeeping

interface Attempt {
  space: "m" | "f" | "r";
  mesh: string;
  rawPath: string;
  status: number;
}

function meshSegment(mesh: string, encode: boolean): string {
  return encode ? encodeURIComponent(mesh) : mesh;
}

function ioUrl(mesh: string, encode: boolean, route: string, path?: string | null): string {
  const url = `${ORIGIN}/io/${meshSegment(mesh, encode)}/${route}`;
  if (path === undefined || path === null) return url;
  return `${url}?path=${encodeURIComponent(path.replace(/[\uD800-\uDFFF]/g, "\uFFFD"))}`;
}

function safeHeaders(raw: Record<string, string>): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(raw)) {
    try {
      headers.set(name, value);
    } catch {
      // Not sendable by a real HTTP client either.
    }
  }
  return headers;
}

async function send(url: string, init: { method: string; headers?: Headers; body?: BodyInit | null }): Promise<{ status: number; text: string; headers: Headers }> {
  let request: Request;
  try {
    const hasBody = init.body !== undefined && init.body !== null && init.method !== "GET" && init.method !== "HEAD";
    request = new Request(url, { method: init.method, headers: init.headers, body: hasBody ? init.body : null });
  } catch {
    // A URL or method no client could send; nothing reaches the worker.
    return { status: 0, text: "", headers: new Headers() };
  }
  const res = await SELF.fetch(request);
  if (res.status === 101) {
    res.webSocket?.accept();
    res.webSocket?.close(1000, "fuzz");
    return { status: 101, text: "", headers: res.headers };
  }
  return { status: res.status, text: await res.text(), headers: res.headers };
}

/** The shared properties of every answer. `strict` forbids every 5xx (IO routes in open mode). */
function checkAnswer(answer: { status: number; text: string; headers: Headers }, strict: boolean, what: string): void {
  if (answer.status === 0) return;
  if (answer.status === 500 || (strict && answer.status >= 500)) {
    throw new Error(`${what} answered ${answer.status}: ${answer.text.slice(0, 300)}`);
  }
  if (answer.status >= 500 && !strict) {
    // A deployment-level refusal (e.g. a feature not configured) must still be the JSON error body.
    expect(answer.status).toBe(503);
  }
  if (answer.status >= 400 && answer.text !== "") {
    let body: { error?: unknown; message?: unknown };
    try {
      body = JSON.parse(answer.text) as typeof body;
    } catch {
      throw new Error(`${what} answered ${answer.status} with a non-JSON error body: ${answer.text.slice(0, 200)}`);
    }
    if (typeof body.error !== "string" || typeof body.message !== "string") {
      throw new Error(`${what} answered ${answer.status} without { error, message }: ${answer.text.slice(0, 200)}`);
    }
  }
}

function normalizable(raw: string): string | null {
  try {
    return normalizePath(raw.replace(/[\uD800-\uDFFF]/g, "\uFFFD"));
  } catch {
    return null;
  }
}

function bytesOf(body: string | Uint8Array): Uint8Array {
  return typeof body === "string" ? new TextEncoder().encode(body) : body;
}

/**
 * What an acknowledged write promises: a created or overwritten file reads back verbatim, and a
 * deleted path is gone from metadata at once (an exact GET of a deleted change file may still be
 * served during its grace period, so GET is only checked for other classes).
 */
async function expectReadBack(route: "file" | "stored-file", mesh: string, path: string, m: string, status: number, body: string | Uint8Array) {
  const enc = encodeURIComponent(path);
  if (m === "PUT" && (status === 201 || status === 204 || (route === "stored-file" && status === 200))) {
    const got = await SELF.fetch(`${ORIGIN}/io/${mesh}/${route}?path=${enc}`);
    expect(got.status).toBe(200);
    expect(new Uint8Array(await got.arrayBuffer())).toEqual(bytesOf(body));
  }
  if (m === "DELETE" && status === 204) {
    const metaRoute = route === "file" ? "metadata" : "stored-file-metadata";
    const meta = await SELF.fetch(`${ORIGIN}/io/${mesh}/${metaRoute}`, { method: "POST", body: JSON.stringify({ path }) });
    expect(meta.status).toBe(404);
    await meta.arrayBuffer();
    if (route === "stored-file" || !path.includes("-chg_")) {
      const got = await SELF.fetch(`${ORIGIN}/io/${mesh}/${route}?path=${enc}`);
      expect(got.status).toBe(404);
      await got.arrayBuffer();
    }
  }
}

// ---------------------------------------------------------------------------------------------

describe("fuzzed requests to the POST routes (metadata, list-files, list-folders, ensure-folder, stored-file-metadata)", () => {
  it("never answer 5xx, and every error is the JSON error body", async () => {
    const routes = fc.constantFrom("metadata", "list-files", "list-folders", "ensure-folder", "stored-file-metadata", "health");
    await fc.assert(
      fc.asyncProperty(anyMesh, fc.boolean(), routes, fc.constantFrom("POST", "POST", "POST", "GET", "PUT"), postBody, optionalHeaders, async (mesh, encode, route, m, body, headers) => {
        const answer = await send(ioUrl(mesh, encode, route), { method: m, headers: safeHeaders(headers), body });
        checkAnswer(answer, true, `${m} ${route} on ${JSON.stringify(mesh)}`);
        if (answer.status === 200 && route === "list-files") {
          const files = (JSON.parse(answer.text) as { files: { name: string; path: string }[] }).files;
          for (const f of files) expect(f.path.endsWith(`/${f.name}`)).toBe(true);
        }
      }),
      fcOptions,
    );
  }, TIMEOUT_MS);
});

describe("fuzzed writes to /sync/io/<mesh>/file, /sync/io/<mesh>/stored-file and /sync/recovery/<locator>", () => {
  it("never answer 5xx, every error is the JSON error body, acknowledged writes read back verbatim, and the bucket holds only keys of writes to that same mesh", async () => {
    const writes: Attempt[] = [];
    const locator = fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{43}$/), fc.string({ maxLength: 60 }), fc.constantFrom("", "a".repeat(42), "a".repeat(44), "..", "%2e%2e"));
    const target = fc.oneof(
      { weight: 5, arbitrary: fc.record({ mesh: anyMesh, encode: fc.boolean(), path: pathArb, m: fc.constantFrom("GET", "PUT", "PUT", "PUT", "DELETE", "POST") }).map((t) => ({ ...t, route: "file" as const })) },
      { weight: 3, arbitrary: fc.record({ mesh: anyMesh, encode: fc.boolean(), path: pathArb, m: fc.constantFrom("GET", "PUT", "PUT", "DELETE", "POST") }).map((t) => ({ ...t, route: "stored-file" as const })) },
      { weight: 1, arbitrary: fc.record({ mesh: fc.constant(""), encode: fc.constant(true), path: locator, m: fc.constantFrom("GET", "PUT", "PUT", "DELETE") }).map((t) => ({ ...t, route: "recovery" as const })) },
    );
    await fc.assert(
      fc.asyncProperty(target, optionalHeaders, putBody, async (t, headers, body) => {
        const url = t.route === "recovery" ? `${ORIGIN}/recovery/${encodeURIComponent(t.path)}` : ioUrl(t.mesh, t.encode, t.route, t.path);
        const answer = await send(url, { method: t.m, headers: safeHeaders(headers), body });
        checkAnswer(answer, true, `${t.m} ${t.route} ${JSON.stringify(t.path)} on ${JSON.stringify(t.mesh)}`);
        if (t.m !== "PUT" && t.m !== "DELETE") return;
        const space = t.route === "file" ? "m" : t.route === "stored-file" ? "f" : "r";
        writes.push({ space, mesh: t.mesh, rawPath: t.path, status: answer.status });
        if (t.route === "stored-file" && t.m === "PUT" && (answer.status === 200 || answer.status === 201)) {
          const file = (JSON.parse(answer.text) as { file: { path: string } }).file;
          expect(file.path).toBe(normalizable(t.path));
        }
        if (t.route === "recovery" || answer.status < 200 || answer.status > 299) return;
        await expectReadBack(t.route, t.mesh, normalizable(t.path)!, t.m, answer.status, body);
      }),
      { ...fcOptions, numRuns: 400 },
    );

    const explained = new Set<string>();
    for (const w of writes) {
      if (w.space === "r") {
        explained.add(`r/${w.rawPath}`);
        continue;
      }
      const path = normalizable(w.rawPath);
      if (path !== null) explained.add(`${w.space}/${w.mesh}${path}`);
    }
    const keys: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const listed = await env.BUCKET.list({ cursor, limit: 1000 });
      keys.push(...listed.objects.map((o) => o.key));
      if (!listed.truncated) break;
      cursor = listed.cursor;
    }
    expect(keys.filter((key) => !explained.has(key))).toEqual([]);
    for (const key of keys) {
      expect(key).toMatch(/^(m\/[A-Za-z0-9][A-Za-z0-9._~-]{0,127}\/|f\/[A-Za-z0-9][A-Za-z0-9._~-]{0,127}\/|r\/[A-Za-z0-9_-]{43}$)/);
    }
    // The fuzzer must actually land writes for this property to mean anything.
    const landed = writes.filter((w) => w.status >= 200 && w.status < 300).length;
    expect(landed).toBeGreaterThan(20);
    expect(keys.length).toBeGreaterThan(5);
  }, TIMEOUT_MS);
});

describe("fuzzed requests to /sync/notify/<mesh>, auth and admin routes", () => {
  it("never answer 500; the notify routes never answer 5xx", async () => {
    const target = fc.oneof(
      anyMesh.map((mesh) => ({ url: `${ORIGIN}/notify/${encodeURIComponent(mesh)}`, strict: true })),
      anyMesh.map((mesh) => ({ url: `${ORIGIN}/notify/${encodeURIComponent(mesh)}/health`, strict: true })),
      fc.constantFrom("/auth/session", "/admin/keys", "/admin/sessions", "/admin/maintenance", "/admin/mesh-ids", "/admin/meshes/main", "/admin/meshes/main/reconcile", "/admin/keys/x", "/admin/sessions/x", "/nope", "/io", "/io/main", "/io/main/nope", "")
        .map((p) => ({ url: `${ORIGIN}${p}`, strict: false })),
    );
    // Admin writes are refused without the admin secret, so nothing here lands in the bucket.
    await fc.assert(
      fc.asyncProperty(target, method, optionalHeaders, putBody, async (t, m, headers, body) => {
        const answer = await send(t.url, { method: m, headers: safeHeaders(headers), body });
        checkAnswer(answer, t.strict, `${m} ${t.url}`);
      }),
      fcOptions,
    );
  }, TIMEOUT_MS);
});

describe("fuzzed client messages on the push socket GET /sync/notify/<mesh>", () => {
  it("never break the socket: the next write still arrives as a frame, unless a message is over the bound (closed 1009)", async () => {
    const message = fc.oneof(
      fc.constantFrom("ping", "pong", "", "{}", "null", '{"type":"invalidation"}', "x".repeat(70_000)),
      fc.string({ unit: "grapheme", maxLength: 200 }),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.uint8Array({ maxLength: 512 }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 5 }), async (messages) => {
        const mesh = `fuzz-push-${crypto.randomUUID()}`;
        const upgrade = await SELF.fetch(`${ORIGIN}/notify/${mesh}`, { headers: { Upgrade: "websocket" } });
        expect(upgrade.status).toBe(101);
        const socket = upgrade.webSocket!;
        const frames: string[] = [];
        let closed: number | null = null;
        socket.addEventListener("message", (event) => frames.push(String(event.data)));
        socket.addEventListener("close", (event) => (closed = event.code));
        socket.accept();
        for (const m of messages) socket.send(m);
        const path = "/MyApp/notes/after-fuzz.bin";
        const put = await SELF.fetch(`${ORIGIN}/io/${mesh}/file?path=${encodeURIComponent(path)}`, { method: "PUT", body: "x" });
        expect(put.status).toBe(201);
        await put.arrayBuffer();
        const deadline = Date.now() + 5_000;
        const arrived = () => frames.some((f) => f.includes(path));
        while (!arrived() && closed === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        // A client only ever sends "ping": a frame over PUSH_MAX_MESSAGE_BYTES (1 KiB) is abuse and
        // closes that socket with 1009; anything within the bound never breaks it.
        const bytes = (m: string | Uint8Array) => (typeof m === "string" ? new TextEncoder().encode(m).length : m.length);
        const oversize = messages.some((m) => bytes(m) > 1024);
        if (oversize) {
          while (closed === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
          expect(closed).toBe(1009);
          return;
        }
        socket.close(1000, "fuzz done");
        expect(closed).toBeNull();
        expect(arrived()).toBe(true);
      }),
      { seed: SEED, numRuns: 25, endOnFailure: true },
    );
  }, TIMEOUT_MS);
});

// ---------------------------------------------------------------------------------------------
// HLC shapes and head.json bodies (issue 9): every client version's change-file names are write-once,
// and no head.json body can answer 500 or freeze the max-register.

/** HLC texts as different client versions write them: 15 or 16 digits, ISO timestamps, opaque. */
const anyClientHlc = fc.oneof(
  hlc,
  fc
    .tuple(fc.integer({ min: 0, max: 9_999_999_999_999_999 }), fc.integer({ min: 0, max: 0xffff }), fc.stringMatching(/^[a-z0-9]{1,8}$/))
    .map(([ms, c, d]) => `${String(ms).padStart(16, "0")}-${c.toString(16).padStart(4, "0")}-${d}`),
  fc
    .tuple(fc.date({ min: new Date("2000-01-01T00:00:00Z"), max: new Date("2099-12-31T23:59:59Z"), noInvalidDate: true }), fc.integer({ min: 0, max: 9999 }), fc.stringMatching(/^[a-z0-9]{1,8}$/))
    .map(([d, c, dev]) => `${d.toISOString()}_${String(c).padStart(4, "0")}_${dev}`),
  fc.stringMatching(/^[A-Za-z0-9._~:+=-]{1,40}$/),
);

/** A sane HLC of the 15-digit shape above every generated value (`9` sorts above every digit). */
const ABOVE_EVERY_DIGIT_HLC = `${"9".repeat(16)}-ffff-zz`;

describe("fuzzed change-file names of every HLC shape", () => {
  it("are write-once: the first PUT answers 201, a re-encrypted retry 200, and GET serves the first bytes", async () => {
    await fc.assert(
      fc.asyncProperty(anyClientHlc, fc.uint8Array({ minLength: 1, maxLength: 64 }), async (h, first) => {
        const mesh = `fuzz-hlc-${crypto.randomUUID()}`;
        const path = `/MyApp/changes/${h}-chg_${crypto.randomUUID()}.json`;
        const url = `${ORIGIN}/io/${mesh}/file?path=${encodeURIComponent(path)}`;
        const created = await send(url, { method: "PUT", body: first });
        checkAnswer(created, true, `PUT ${path}`);
        expect(created.status).toBe(201);
        const retry = await send(url, { method: "PUT", body: new Uint8Array([...first, 0x21]) });
        expect(retry.status).toBe(200);
        const got = await SELF.fetch(url);
        expect(new Uint8Array(await got.arrayBuffer())).toEqual(first);
      }),
      { seed: SEED, numRuns: 60, endOnFailure: true },
    );
  }, TIMEOUT_MS);
});

describe("fuzzed changes/head.json bodies", () => {
  it("never answer 5xx, refuse every insane latestHlc with 400 invalid_body leaving head as it was, and never freeze head", async () => {
    const junkHlc = fc.oneof(
      fc.string({ unit: "binary", maxLength: 30 }),
      fc.string({ unit: "grapheme", maxLength: 20 }),
      fc.constantFrom("\uffff", "\ud800", "\udfff", "é", "", "\u0000", "\u007f", "a\nb", "9".repeat(1025), "~".repeat(1025)),
    );
    const latest = fc.oneof(anyClientHlc, junkHlc);
    const body = fc.oneof(
      { weight: 4, arbitrary: latest.map((v) => JSON.stringify({ latestHlc: v })) },
      { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
      { weight: 1, arbitrary: fc.record({ latestHlc: fc.oneof(fc.integer(), fc.constant(null), fc.array(fc.string())) }).map((v) => JSON.stringify(v)) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
    );
    const sane = (v: unknown): v is string => typeof v === "string" && v.length >= 1 && v.length <= 1024 && /^[\x20-\x7e]+$/.test(v);
    const utf8 = new TextEncoder();
    const byteOrder = (a: string, b: string) => {
      const [x, y] = [utf8.encode(a), utf8.encode(b)];
      for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
      return x.length - y.length;
    };
    await fc.assert(
      fc.asyncProperty(anyClientHlc, body, async (start, sent) => {
        const mesh = `fuzz-head-${crypto.randomUUID()}`;
        const url = `${ORIGIN}/io/${mesh}/file?path=${encodeURIComponent("/MyApp/changes/head.json")}`;
        const startBody = JSON.stringify({ latestHlc: start });
        expect((await send(url, { method: "PUT", body: startBody })).status).toBe(201);

        const answer = await send(url, { method: "PUT", body: sent });
        checkAnswer(answer, true, `PUT head.json ${typeof sent === "string" ? sent.slice(0, 80) : "bytes"}`);
        let parsed: unknown;
        try {
          parsed = JSON.parse(typeof sent === "string" ? sent : new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(sent));
        } catch {
          parsed = undefined;
        }
        const offered = typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as { latestHlc?: unknown }).latestHlc : undefined;
        const current = await send(url, { method: "GET" });
        if (!sane(offered)) {
          expect(answer.status).toBe(400);
          expect(JSON.parse(answer.text)).toMatchObject({ error: "invalid_body" });
          expect(current.text).toBe(startBody);
        } else {
          expect(answer.status).toBe(byteOrder(offered, start) > 0 ? 204 : 200);
          expect(JSON.parse(current.text)).toEqual({ latestHlc: byteOrder(offered, start) > 0 ? offered : start });
        }
        // Not frozen: unless an accepted value already sits above it, a real flush still moves head.
        const next = await send(url, { method: "PUT", body: JSON.stringify({ latestHlc: ABOVE_EVERY_DIGIT_HLC }) });
        const stored = (JSON.parse(current.text) as { latestHlc: string }).latestHlc;
        expect(next.status).toBe(byteOrder(ABOVE_EVERY_DIGIT_HLC, stored) > 0 ? 204 : 200);
      }),
      { seed: SEED, numRuns: 150, endOnFailure: true },
    );
  }, TIMEOUT_MS);
});
