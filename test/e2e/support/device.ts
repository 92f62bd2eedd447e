// A device simulator that speaks to meshbox exactly as the Interocitor engine's unmodified
// CloudflareAdapter does (/work/shared/CLIENT.md): connect, flush, pull, compact, rehydrate from a
// snapshot, and a push subscription. Runs in Node 22 (global fetch, WebSocket, crypto), for the
// e2e scenarios and the benchmarks.
//
// The server never decrypts, so "encryption" here is a stand-in: the ciphertext field is base64 of
// a small JSON record plus random padding, under a fresh random IV every time it is sealed. That
// keeps the wire bytes faithful (a retried flush re-encrypts to different bytes) while letting the
// tests check what a device merged.
//
// Erasable TypeScript only (no enums, parameter properties or namespaces), so the benchmarks can run
// this file with Node's type stripping.

const SERVER_ID = "server_relay_1";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface DeviceOptions {
  /** Worker origin plus mount prefix, e.g. http://127.0.0.1:8787/sync */
  base: string;
  mesh: string;
  /** The client's remote root, e.g. /MyApp */
  root?: string;
  deviceId?: string;
  /** Bearer token (open mode needs none). */
  token?: string;
  /** Random padding added to each sealed change, to model batch size. */
  changePaddingBytes?: number;
  /** Client clock, for deterministic HLC tests. */
  now?: () => number;
  /**
   * The simulator's old compaction: restore a newer snapshot before compacting. The real client
   * does not (CLIENT.md "Compaction and connected devices"); kept so a test can compare the two.
   */
  legacyCompaction?: boolean;
}

/** A non-2xx answer where the real client throws. */
export class WireError extends Error {
  readonly status: number;
  readonly body: string;
  readonly method: string;
  readonly target: string;

  constructor(method: string, target: string, status: number, body: string) {
    super(`${method} ${target} answered ${status}: ${body.slice(0, 300)}`);
    this.name = "WireError";
    this.method = method;
    this.target = target;
    this.status = status;
    this.body = body;
  }
}

/** A listed change file that then answered 404 or did not "decrypt": sync halts until reconnect. */
export class PoisonedError extends Error {
  readonly path: string;

  constructor(path: string, why: string) {
    super(`sync halted (poisoned) at ${path}: ${why}`);
    this.name = "PoisonedError";
    this.path = path;
  }
}

export interface FileInfo {
  name: string;
  path: string;
  size: number;
  modifiedTime: string;
  etag: string;
}

export interface ManifestPointer {
  currentGeneration: number;
  file: string;
}

export interface Manifest {
  version: 3;
  meshId: string;
  epoch: number;
  snapshotPath: string | null;
  encrypted: boolean;
  writtenBy: string;
  /** The generation a compaction built on (absent on a bootstrap manifest). */
  parentGeneration?: number;
  contentHash: string;
}

export interface InvalidationFrameLike {
  type?: string;
  op?: string;
  path?: string;
  paths?: string[];
  seq?: number;
  ts?: number;
  /** performance.now() when the simulator received the frame (set locally, not sent by the server). */
  receivedAt?: number;
  [key: string]: unknown;
}

export interface PullResult {
  /** Change file names merged by this pull, in HLC order. */
  merged: string[];
  /** Listed change files the device had already merged. */
  skipped: number;
  latestHlc: string | null;
}

export type CompactResult =
  | { ok: true; generation: number; epoch: number; snapshotPath: string; covered: string[]; deleted: string[] }
  | { ok: false; stage: "snapshot" | "generation" | "pointer"; status: number; body: string };

interface QueuedBatch {
  /** Change file name; fixed for the life of the batch (a retry re-sends the same name). */
  name: string;
  hlc: string;
  rows: Record<string, string>;
}

// ---------------------------------------------------------------------------------------------
// Small primitives

export function randomHex(bytes: number): string {
  const buf = new Uint8Array(bytes);
  crypto.getRandomValues(buf);
  return Array.from(buf, (b) => b.toString(16).padStart(2, "0")).join("");
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}

function fromBase64(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, "base64"));
}

/** RFC 9562 UUIDv7: 48-bit ms timestamp, version 7, variant 10, random rest. */
export function uuidv7(ms: number = Date.now()): string {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  let t = ms;
  for (let i = 5; i >= 0; i--) {
    b[i] = t % 256;
    t = Math.floor(t / 256);
  }
  b[6] = (b[6]! & 0x0f) | 0x70;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Hybrid logical clock with the client's text form `<15-digit ms>-<4 hex counter>-<deviceId>`.
 * Texts of one clock sort bytewise in causal order; `observe` folds in remote stamps.
 */
export class HlcClock {
  readonly deviceId: string;
  #ms = 0;
  #counter = 0;
  #now: () => number;

  constructor(deviceId: string, now: () => number = Date.now) {
    this.deviceId = deviceId;
    this.#now = now;
  }

  next(): string {
    const wall = this.#now();
    if (wall > this.#ms) {
      this.#ms = wall;
      this.#counter = 0;
    } else {
      this.#counter += 1;
      if (this.#counter > 0xffff) {
        this.#ms += 1;
        this.#counter = 0;
      }
    }
    return formatHlc(this.#ms, this.#counter, this.deviceId);
  }

  observe(remote: string): void {
    const parsed = parseHlc(remote);
    if (!parsed) return;
    if (parsed.ms > this.#ms || (parsed.ms === this.#ms && parsed.counter > this.#counter)) {
      this.#ms = parsed.ms;
      this.#counter = parsed.counter;
    }
  }
}

export function formatHlc(ms: number, counter: number, deviceId: string): string {
  return `${String(ms).padStart(15, "0")}-${counter.toString(16).padStart(4, "0")}-${deviceId}`;
}

export function parseHlc(text: string): { ms: number; counter: number; deviceId: string } | null {
  const m = /^(\d{15})-([0-9a-fA-F]{4})-(.+)$/.exec(text);
  if (!m) return null;
  return { ms: Number(m[1]), counter: parseInt(m[2]!, 16), deviceId: m[3]! };
}

/** The HLC prefix of a change file name `<hlc>-chg_<id>.json`. */
export function hlcOfChange(name: string): string {
  const i = name.indexOf("-chg_");
  return i < 0 ? name : name.slice(0, i);
}

export function isChangeFileName(name: string): boolean {
  return name.includes("-chg_");
}

/** Sealed envelope `{"v":1,"iv":…,"ct":…}` around a JSON record (see the header comment). */
export function seal(record: unknown, paddingBytes = 0): string {
  const iv = new Uint8Array(12);
  crypto.getRandomValues(iv);
  const pad = paddingBytes > 0 ? randomBase64(paddingBytes) : "";
  const ct = base64(encoder.encode(JSON.stringify({ record, pad })));
  return JSON.stringify({ v: 1, iv: base64(iv), ct });
}

export function unseal(text: string): unknown {
  const envelope = JSON.parse(text) as { v?: unknown; iv?: unknown; ct?: unknown };
  if (envelope.v !== 1 || typeof envelope.iv !== "string" || typeof envelope.ct !== "string") {
    throw new Error("not a sealed envelope");
  }
  const inner = JSON.parse(decoder.decode(fromBase64(envelope.ct))) as { record?: unknown };
  return inner.record;
}

/** Base64 text of `bytes` random bytes, generated in chunks (getRandomValues caps at 64 KiB). */
export function randomBase64(bytes: number): string {
  const buf = new Uint8Array(bytes);
  for (let off = 0; off < bytes; off += 65_536) {
    crypto.getRandomValues(buf.subarray(off, Math.min(bytes, off + 65_536)));
  }
  return base64(buf);
}

async function manifestHash(manifest: Omit<Manifest, "contentHash">): Promise<string> {
  return `sha256:${await sha256Hex(JSON.stringify(manifest))}`;
}

/** Checks `contentHash` against the manifest bytes, as the client does after every manifest read. */
export async function verifyManifest(text: string): Promise<Manifest> {
  const parsed = JSON.parse(text) as Manifest;
  const { contentHash, ...rest } = parsed;
  if (typeof contentHash !== "string" || contentHash !== (await manifestHash(rest))) {
    throw new Error("manifest contentHash does not match its bytes");
  }
  return parsed;
}

// ---------------------------------------------------------------------------------------------
// The device

export class Device {
  /** Changes only through moveTo. */
  base: string;
  readonly mesh: string;
  readonly root: string;
  readonly deviceId: string;
  readonly clock: HlcClock;
  readonly token: string | undefined;
  readonly changePaddingBytes: number;

  /** Change file names this device has merged (its own included). */
  readonly merged = new Set<string>();
  /** Rows the device holds (key -> value, last writer by HLC wins). */
  readonly rows = new Map<string, { value: string; hlc: string }>();
  /** Batches written locally and not yet acknowledged by the server. */
  readonly outbox: QueuedBatch[] = [];
  /** Requests sent, by "METHOD route" (for request-count assertions and benchmarks). */
  readonly requestCounts = new Map<string, number>();
  /** GET file requests sent, by path (to show which files a device fetched). */
  readonly getsByPath = new Map<string, number>();
  readonly legacyCompaction: boolean;

  epoch = 0;
  generation = 0;
  manifest: Manifest | null = null;
  snapshotPath: string | null = null;
  poisoned: PoisonedError | null = null;
  #healthChecked = false;
  #socket: WebSocket | null = null;
  #frames: InvalidationFrameLike[] = [];
  #frameWaiters: Array<() => void> = [];
  #autoPull: { cooldownMs: number; timer: ReturnType<typeof setTimeout> | null; chain: Promise<void> } | null = null;
  /** Pulls the push socket triggered (see startAutoPull), and their failures. */
  autoPulls = 0;
  readonly autoPullErrors: unknown[] = [];

  constructor(options: DeviceOptions) {
    this.base = options.base.replace(/\/+$/, "");
    this.mesh = options.mesh;
    this.root = (options.root ?? "/MyApp").replace(/\/+$/, "");
    this.deviceId = options.deviceId ?? `dev_${randomHex(6)}`;
    this.token = options.token;
    this.changePaddingBytes = options.changePaddingBytes ?? 64;
    this.clock = new HlcClock(this.deviceId, options.now);
    this.legacyCompaction = options.legacyCompaction ?? false;
  }

  /**
   * Points the device at another server, its local state (merged files, rows, epoch, generation)
   * kept: a client whose endpoint setting changed, e.g. after its mesh moved to meshbox.
   */
  moveTo(base: string): void {
    this.base = base.replace(/\/+$/, "");
    this.#healthChecked = false;
  }

  get io(): string {
    return `${this.base}/io/${encodeURIComponent(this.mesh)}`;
  }

  path(relative: string): string {
    return `${this.root}/${relative.replace(/^\/+/, "")}`;
  }

  // --- HTTP --------------------------------------------------------------------------------

  async send(method: string, route: string, init: { query?: Record<string, string>; body?: BodyInit | null; headers?: Record<string, string>; duplex?: boolean } = {}): Promise<Response> {
    const url = new URL(`${this.io}/${route}`);
    for (const [k, v] of Object.entries(init.query ?? {})) url.searchParams.set(k, v);
    const headers: Record<string, string> = { ...(init.headers ?? {}) };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const key = `${method} ${route}`;
    this.requestCounts.set(key, (this.requestCounts.get(key) ?? 0) + 1);
    const requestInit: RequestInit & { duplex?: "half" } = { method, headers, body: init.body ?? null };
    if (init.duplex) requestInit.duplex = "half";
    return fetch(url, requestInit);
  }

  async getFile(path: string): Promise<Response> {
    this.getsByPath.set(path, (this.getsByPath.get(path) ?? 0) + 1);
    return this.send("GET", "file", { query: { path } });
  }

  async putFile(path: string, body: BodyInit, headers: Record<string, string> = {}): Promise<Response> {
    return this.send("PUT", "file", { query: { path }, body, headers });
  }

  async deleteFile(path: string): Promise<Response> {
    return this.send("DELETE", "file", { query: { path } });
  }

  async postJson(route: string, body: unknown): Promise<Response> {
    return this.send("POST", route, { body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
  }

  /** PUT that throws on any non-2xx, like the client. */
  async mustPut(path: string, body: BodyInit): Promise<number> {
    const res = await this.putFile(path, body);
    const text = await res.text();
    if (res.status < 200 || res.status > 299) throw new WireError("PUT", path, res.status, text);
    return res.status;
  }

  /** The text of a file, or null on any failure (how the client reads optional files). */
  async readText(path: string): Promise<string | null> {
    const res = await this.getFile(path);
    const text = await res.text();
    return res.ok ? text : null;
  }

  async listFiles(folder: string): Promise<FileInfo[]> {
    const res = await this.postJson("list-files", { path: folder });
    const text = await res.text();
    if (!res.ok) throw new WireError("POST", `list-files ${folder}`, res.status, text);
    return (JSON.parse(text) as { files: FileInfo[] }).files;
  }

  async metadata(path: string): Promise<FileInfo | null> {
    const res = await this.postJson("metadata", { path });
    const text = await res.text();
    if (!res.ok) return null;
    return (JSON.parse(text) as { file: FileInfo | null }).file;
  }

  // --- connect -----------------------------------------------------------------------------

  /** CLIENT.md "Connect": health, ensure-folder x4, manifest (bootstrap if absent), device record, pull, flush. */
  async connect(options: { pull?: boolean; flush?: boolean } = {}): Promise<void> {
    this.poisoned = null;
    if (!this.#healthChecked) {
      const res = await this.send("GET", "health");
      const text = await res.text();
      if (!res.ok) throw new WireError("GET", "health", res.status, text);
      this.#healthChecked = true;
    }
    for (const folder of [this.root, this.path("devices"), this.path("mainline"), this.path("changes")]) {
      const res = await this.postJson("ensure-folder", { path: folder });
      const text = await res.text();
      if (!res.ok && res.status !== 405) throw new WireError("POST", `ensure-folder ${folder}`, res.status, text);
    }
    const loaded = await this.loadManifest();
    if (!loaded) await this.bootstrap();
    await this.restoreIfBehind();
    await this.writeDeviceRecord();
    if (options.pull !== false) await this.pull();
    if (options.flush !== false) await this.flush();
  }

  /** GET the pointer and the generation it names; false on any failure ("no mesh here"). */
  async loadManifest(): Promise<boolean> {
    const pointerText = await this.readText(this.path("manifest.json"));
    if (pointerText === null) return false;
    let pointer: ManifestPointer;
    try {
      pointer = JSON.parse(pointerText) as ManifestPointer;
    } catch {
      return false;
    }
    if (typeof pointer.currentGeneration !== "number" || typeof pointer.file !== "string") return false;
    const manifestText = await this.readText(this.path(pointer.file));
    if (manifestText === null) return false;
    let manifest: Manifest;
    try {
      manifest = await verifyManifest(manifestText);
    } catch {
      return false;
    }
    this.generation = pointer.currentGeneration;
    this.manifest = manifest;
    this.snapshotPath = manifest.snapshotPath;
    return true;
  }

  /** Writes manifest-1.json and a generation-1 pointer, as a new (or confused) client does. */
  async bootstrap(): Promise<void> {
    const manifest = await this.buildManifest(0, null);
    await this.mustPut(this.path("manifest-1.json"), JSON.stringify(manifest, null, 2));
    await this.mustPut(this.path("manifest.json"), pointerText(1));
    this.generation = 1;
    this.manifest = manifest;
    this.snapshotPath = null;
  }

  async buildManifest(epoch: number, snapshotPath: string | null, parentGeneration?: number): Promise<Manifest> {
    const body: Omit<Manifest, "contentHash"> = { version: 3, meshId: this.mesh, epoch, snapshotPath, encrypted: true, writtenBy: this.deviceId };
    if (parentGeneration !== undefined) body.parentGeneration = parentGeneration;
    return { ...body, contentHash: await manifestHash(body) };
  }

  /**
   * A device whose epoch is behind the manifest restores from the snapshot before pulling (on
   * connect only). The change files the snapshot covers count as merged and are never fetched.
   */
  async restoreIfBehind(): Promise<boolean> {
    const manifest = this.manifest;
    if (!manifest || manifest.epoch <= this.epoch || manifest.snapshotPath === null) return false;
    const res = await this.getFile(manifest.snapshotPath);
    const text = await res.text();
    if (!res.ok) throw new WireError("GET", manifest.snapshotPath, res.status, text);
    const snapshot = unseal(text) as { epoch: number; changes: string[]; coveredChangeFiles?: string[]; rows: Record<string, { value: string; hlc: string }> };
    for (const name of snapshot.changes) this.merged.add(name);
    for (const name of snapshot.coveredChangeFiles ?? []) this.merged.add(name);
    for (const [key, row] of Object.entries(snapshot.rows)) this.applyRow(key, row.value, row.hlc);
    this.epoch = manifest.epoch;
    return true;
  }

  async writeDeviceRecord(): Promise<void> {
    const path = this.path(`devices/${this.deviceId}.json`);
    await this.readText(path);
    const record = {
      deviceId: this.deviceId,
      epoch: this.epoch,
      merged: this.merged.size,
      updatedAt: new Date().toISOString(),
    };
    await this.mustPut(path, JSON.stringify(record));
  }

  // --- writes and flush --------------------------------------------------------------------

  /** A local write: queued in the outbox as one batch until the next flush. */
  write(rows: Record<string, string>): string {
    const hlc = this.clock.next();
    const name = `${hlc}-chg_${uuidv7()}.json`;
    this.outbox.push({ name, hlc, rows });
    for (const [key, value] of Object.entries(rows)) this.applyRow(key, value, hlc);
    return name;
  }

  /**
   * CLIENT.md "Flush", per batch: forced manifest refresh, PUT the change file, GET head.json,
   * PUT head.json only if ours is greater, GET + PUT the device record. A non-2xx PUT throws and
   * the batch stays queued (re-sent later under the same name, re-sealed to different bytes).
   */
  async flush(): Promise<string[]> {
    const sent: string[] = [];
    const bounded = this.outbox.length;
    for (let i = 0; i < bounded && this.outbox.length > 0; i++) {
      const batch = this.outbox[0]!;
      await this.loadManifest();
      await this.mustPut(this.path(`changes/${batch.name}`), this.sealChange(batch));
      this.outbox.shift();
      this.merged.add(batch.name);
      sent.push(batch.name);
      await this.raiseHead(batch.hlc);
      await this.writeDeviceRecord();
    }
    return sent;
  }

  sealChange(batch: QueuedBatch): string {
    return seal({ change: batch.name, rows: batch.rows }, this.changePaddingBytes);
  }

  /** `head.json` is a hint: written only when our HLC is greater (bytewise). */
  async raiseHead(hlc: string): Promise<void> {
    const path = this.path("changes/head.json");
    const text = await this.readText(path);
    let current = "";
    if (text !== null) {
      try {
        current = String((JSON.parse(text) as { latestHlc?: unknown }).latestHlc ?? "");
      } catch {
        current = "";
      }
    }
    if (hlc > current) await this.mustPut(path, JSON.stringify({ latestHlc: hlc }));
  }

  // --- pull --------------------------------------------------------------------------------

  /**
   * CLIENT.md "Pull": head.json, list changes/ (a failed listing reads as "nothing new"), then GET
   * each unseen `-chg_` file in HLC order. A 404 or an undecodable body poisons sync.
   */
  async pull(): Promise<PullResult> {
    if (this.poisoned) throw this.poisoned;
    const headText = await this.readText(this.path("changes/head.json"));
    let latestHlc: string | null = null;
    if (headText !== null) {
      try {
        latestHlc = String((JSON.parse(headText) as { latestHlc?: unknown }).latestHlc ?? "") || null;
      } catch {
        latestHlc = null;
      }
    }
    let files: FileInfo[];
    try {
      files = await this.listFiles(this.path("changes"));
    } catch {
      return { merged: [], skipped: 0, latestHlc };
    }
    if (this.epoch > 0) await this.readText(this.path(`devices/${this.deviceId}.json`));
    const changes = files
      .map((f) => f.name)
      .filter(isChangeFileName)
      .sort((a, b) => (hlcOfChange(a) < hlcOfChange(b) ? -1 : hlcOfChange(a) > hlcOfChange(b) ? 1 : 0));
    const merged: string[] = [];
    let skipped = 0;
    for (const name of changes) {
      if (this.merged.has(name)) {
        skipped++;
        continue;
      }
      const path = this.path(`changes/${name}`);
      const res = await this.getFile(path);
      const text = await res.text();
      if (res.status === 404) throw this.poison(path, "listed but answered 404");
      if (!res.ok) throw new WireError("GET", path, res.status, text);
      let record: { change?: unknown; rows?: unknown };
      try {
        record = unseal(text) as { change?: unknown; rows?: unknown };
      } catch {
        throw this.poison(path, "does not decrypt");
      }
      if (record.change !== name || typeof record.rows !== "object" || record.rows === null) {
        throw this.poison(path, "decrypts to another change");
      }
      const hlc = hlcOfChange(name);
      this.clock.observe(hlc);
      for (const [key, value] of Object.entries(record.rows as Record<string, string>)) this.applyRow(key, value, hlc);
      this.merged.add(name);
      merged.push(name);
    }
    return { merged, skipped, latestHlc };
  }

  poison(path: string, why: string): PoisonedError {
    this.poisoned = new PoisonedError(path, why);
    return this.poisoned;
  }

  applyRow(key: string, value: string, hlc: string): void {
    const current = this.rows.get(key);
    if (!current || hlc > current.hlc) this.rows.set(key, { value, hlc });
  }

  // --- compaction --------------------------------------------------------------------------

  /**
   * CLIENT.md "Compact": refresh the manifest (taking a newer generation and epoch without
   * restoring its snapshot), flush, pull, then snapshot this device's own rows and PUT
   * snapshot-<epoch+1>, manifest-<n+1> (with parentGeneration n), the pointer; DELETE the covered
   * change files (errors ignored); list mainline and DELETE every other snapshot. A non-2xx on any
   * PUT aborts before anything is deleted. With `legacyCompaction` a newer snapshot is restored
   * first. `beforePublish` lets a test line two compactors up at the same point.
   */
  async compact(options: { beforePublish?: () => Promise<void>; snapshotPaddingBytes?: number } = {}): Promise<CompactResult> {
    await this.loadManifest();
    if (this.legacyCompaction) await this.restoreIfBehind();
    else if (this.manifest && this.manifest.epoch > this.epoch) this.epoch = this.manifest.epoch;
    await this.flush();
    await this.pull();
    const listed = (await this.listFiles(this.path("changes"))).map((f) => f.name).filter(isChangeFileName);
    const covered = listed.filter((name) => this.merged.has(name));
    const epoch = this.epoch + 1;
    const parentGeneration = this.generation;
    const generation = parentGeneration + 1;
    const snapshotPath = this.path(`mainline/snapshot-${epoch}-${SERVER_ID}.json`);
    const snapshot = seal(
      { epoch, changes: [...this.merged].sort(), coveredChangeFiles: [...covered].sort(), rows: Object.fromEntries(this.rows) },
      options.snapshotPaddingBytes ?? 0,
    );
    if (options.beforePublish) await options.beforePublish();

    let res = await this.putFile(snapshotPath, snapshot);
    let text = await res.text();
    if (!res.ok) return { ok: false, stage: "snapshot", status: res.status, body: text };
    const manifest = await this.buildManifest(epoch, snapshotPath, parentGeneration);
    res = await this.putFile(this.path(`manifest-${generation}.json`), JSON.stringify(manifest, null, 2));
    text = await res.text();
    if (!res.ok) return { ok: false, stage: "generation", status: res.status, body: text };
    res = await this.putFile(this.path("manifest.json"), pointerText(generation));
    text = await res.text();
    if (!res.ok) return { ok: false, stage: "pointer", status: res.status, body: text };
    this.generation = generation;
    this.epoch = epoch;
    this.manifest = manifest;
    this.snapshotPath = snapshotPath;

    const deleted: string[] = [];
    for (const name of covered) {
      const del = await this.deleteFile(this.path(`changes/${name}`));
      await del.arrayBuffer();
      if (del.ok || del.status === 404 || del.status === 405) deleted.push(name);
    }
    for (const file of await this.listFiles(this.path("mainline"))) {
      if (file.path === snapshotPath) continue;
      const del = await this.deleteFile(file.path);
      await del.arrayBuffer();
    }
    return { ok: true, generation, epoch, snapshotPath, covered, deleted };
  }

  // --- push --------------------------------------------------------------------------------

  get notifyUrl(): string {
    const url = new URL(`${this.base}/notify/${encodeURIComponent(this.mesh)}`);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    if (this.token) url.searchParams.set("access_token", this.token);
    return url.toString();
  }

  /** Opens the push socket; resolves once it is open. */
  async subscribe(timeoutMs = 10_000): Promise<void> {
    if (this.#socket) return;
    const socket = new WebSocket(this.notifyUrl);
    this.#socket = socket;
    socket.addEventListener("message", (event: MessageEvent) => {
      let frame: InvalidationFrameLike;
      try {
        frame = JSON.parse(String(event.data)) as InvalidationFrameLike;
      } catch {
        // The client treats any non-JSON frame as "pull now" too.
        frame = { type: "raw", raw: String(event.data) };
      }
      if (typeof frame !== "object" || frame === null) frame = { type: "raw", raw: String(event.data) };
      frame.receivedAt = performance.now();
      this.#frames.push(frame);
      this.#schedulePull();
      const waiters = this.#frameWaiters.splice(0);
      for (const wake of waiters) wake();
    });
    socket.addEventListener("close", () => {
      if (this.#socket === socket) this.#socket = null;
      const waiters = this.#frameWaiters.splice(0);
      for (const wake of waiters) wake();
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`WebSocket did not open within ${timeoutMs} ms`)), timeoutMs);
      socket.addEventListener("open", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.addEventListener("error", () => {
        clearTimeout(timer);
        reject(new Error(`WebSocket to ${this.notifyUrl} failed`));
      });
    });
  }

  /**
   * Reacts to frames like the client: every frame means "pull now", after a fixed cooldown, and a
   * burst of frames inside the cooldown collapses into one pull.
   */
  startAutoPull(cooldownMs = 1_000): void {
    this.#autoPull = { cooldownMs, timer: null, chain: Promise.resolve() };
  }

  /** Stops reacting to frames and waits for a pull already under way. */
  async stopAutoPull(): Promise<void> {
    const auto = this.#autoPull;
    this.#autoPull = null;
    if (!auto) return;
    if (auto.timer) clearTimeout(auto.timer);
    await auto.chain;
  }

  #schedulePull(): void {
    const auto = this.#autoPull;
    if (!auto || auto.timer) return;
    auto.timer = setTimeout(() => {
      auto.timer = null;
      auto.chain = auto.chain.then(async () => {
        this.autoPulls += 1;
        try {
          await this.pull();
        } catch (err) {
          this.autoPullErrors.push(err);
        }
      });
    }, auto.cooldownMs);
  }

  get frames(): readonly InvalidationFrameLike[] {
    return this.#frames;
  }

  /** Takes every frame received so far. */
  drainFrames(): InvalidationFrameLike[] {
    return this.#frames.splice(0);
  }

  /** Resolves with (and removes) the first frame matching `predicate`, or rejects after `timeoutMs`. */
  async nextFrame(predicate: (frame: InvalidationFrameLike) => boolean = () => true, timeoutMs = 10_000): Promise<InvalidationFrameLike> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.#frames.findIndex(predicate);
      if (index >= 0) return this.#frames.splice(index, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching push frame within ${timeoutMs} ms`);
      if (!this.#socket) throw new Error("the push socket is closed");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#frameWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async close(): Promise<void> {
    await this.stopAutoPull();
    const socket = this.#socket;
    this.#socket = null;
    if (!socket || socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2_000);
      socket.addEventListener("close", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.close(1000, "done");
    });
  }
}

export function pointerText(generation: number): string {
  return JSON.stringify({ currentGeneration: generation, file: `manifest-${generation}.json` }, null, 2);
}

/** Polls `check` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let attempt = 0; attempt < 100_000; attempt++) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ""}`);
}
