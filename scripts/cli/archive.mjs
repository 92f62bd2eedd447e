// `meshbox mesh export <mesh> -o file` and `meshbox mesh import <mesh> -i file [--replace]`:
// mesh backups as tar archives (docs/ARCHIVE.md), streamed both ways so the CLI never holds an
// archive in memory. On a TTY a progress line (objects, bytes, rate) is redrawn on stderr;
// otherwise one summary line is printed at the end. Plain Node ESM, no dependencies.
import { createReadStream, createWriteStream } from "node:fs";
import { rm, stat } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";

export const summary = "export a mesh to a tar archive, or import one into an empty mesh";
export const usage = `usage: meshbox mesh export <mesh> -o FILE [--json]
       meshbox mesh import <mesh> -i FILE [--replace] [--json]`;

const DEFAULT_URL = "http://127.0.0.1:8787/sync";
const BLOCK = 512;
const ARCHIVE_ENTRIES = new Set(["meshbox-archive.json", "meshbox-archive-end.json"]);

class UsageError extends Error {}

function parse(argv, options) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(err.message);
  }
}

function config(io) {
  const base = (io.env.MESHBOX_URL ?? DEFAULT_URL).replace(/\/+$/, "");
  const token = io.env.MESHBOX_ADMIN_TOKEN;
  if (!token) throw new Error("no admin token: set MESHBOX_ADMIN_TOKEN");
  // A bare origin gets the default mount prefix, as the other commands do.
  const url = new URL(base);
  return { base: url.pathname === "/" ? `${url.origin}/sync` : base, token };
}

/**
 * Counts the entries of a tar stream as it passes, from the ustar headers alone (every header is
 * a 512-byte block at a known offset). Archive bookkeeping entries and pax headers do not count.
 */
export class TarCounter {
  objects = 0;
  bytes = 0;
  ended = false;
  #skip = 0;
  #header = Buffer.alloc(0);

  push(chunk) {
    this.bytes += chunk.length;
    let at = 0;
    while (at < chunk.length && !this.ended) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - at);
        this.#skip -= n;
        at += n;
        continue;
      }
      const need = BLOCK - this.#header.length;
      const piece = chunk.subarray(at, at + need);
      this.#header = Buffer.concat([this.#header, piece]);
      at += piece.length;
      if (this.#header.length < BLOCK) return;
      const block = this.#header;
      this.#header = Buffer.alloc(0);
      if (block.every((b) => b === 0)) {
        this.ended = true;
        return;
      }
      const size = parseInt(block.subarray(124, 136).toString("latin1").replace(/[\0 ]+$/, ""), 8) || 0;
      const type = String.fromCharCode(block[156]);
      const name = block.subarray(0, 100).toString("latin1").replace(/\0.*$/s, "");
      if (type === "0" && !ARCHIVE_ENTRIES.has(name)) this.objects++;
      this.#skip = size + ((BLOCK - (size % BLOCK)) % BLOCK);
    }
  }
}

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function rate(bytes, ms) {
  return `${(bytes / 1024 / 1024 / Math.max(ms / 1000, 0.001)).toFixed(1)} MiB/s`;
}

/** Redraws one progress line on a TTY at most ten times a second. */
function progress(io, verb, counter, started) {
  let last = 0;
  const draw = (force) => {
    if (!io.isTTY) return;
    const now = Date.now();
    if (!force && now - last < 100) return;
    last = now;
    const line = `${verb}: ${counter.objects} objects, ${formatBytes(counter.bytes)}, ${rate(counter.bytes, now - started)}`;
    io.stderr.write(`\r\x1b[2K${line}`);
  };
  return { draw, done: () => io.isTTY && (draw(true), io.stderr.write("\n")) };
}

async function failure(res) {
  const text = await res.text();
  try {
    const body = JSON.parse(text);
    return new Error(`HTTP ${res.status} ${body.error}: ${body.message}`);
  } catch {
    return new Error(`HTTP ${res.status}: ${text.slice(0, 200)}`);
  }
}

async function exportArchive(argv, io) {
  const { values, positionals } = parse(argv, { output: { type: "string", short: "o" }, json: { type: "boolean" } });
  if (positionals.length !== 1 || !values.output) throw new UsageError("export takes one mesh and -o FILE");
  const [mesh] = positionals;
  const { base, token } = config(io);
  const started = Date.now();
  const res = await fetch(`${base}/admin/meshes/${encodeURIComponent(mesh)}/export`, { headers: { Authorization: `Bearer ${token}` } });
  if (!res.ok) throw await failure(res);
  const counter = new TarCounter();
  const bar = progress(io, `export ${mesh}`, counter, started);
  const file = createWriteStream(values.output);
  try {
    await pipeline(
      Readable.fromWeb(res.body),
      async function* (source) {
        for await (const chunk of source) {
          counter.push(chunk);
          bar.draw(false);
          yield chunk;
        }
      },
      file,
    );
    // The server aborts the stream on a failure; an archive without its end is no backup.
    if (!counter.ended) throw new Error("the archive stream ended early (the server failed mid-export); nothing usable was written");
  } catch (err) {
    await rm(values.output, { force: true });
    throw err;
  } finally {
    bar.done();
  }
  const ms = Date.now() - started;
  const result = { mesh, file: values.output, objects: counter.objects, bytes: counter.bytes, seconds: ms / 1000 };
  io.stdout.write(
    values.json
      ? `${JSON.stringify(result)}\n`
      : `exported ${mesh}: ${counter.objects} objects, ${formatBytes(counter.bytes)} in ${(ms / 1000).toFixed(1)} s (${rate(counter.bytes, ms)}) to ${values.output}\n`,
  );
  return 0;
}

async function importArchive(argv, io) {
  const { values, positionals } = parse(argv, {
    input: { type: "string", short: "i" },
    replace: { type: "boolean" },
    json: { type: "boolean" },
  });
  if (positionals.length !== 1 || !values.input) throw new UsageError("import takes one mesh and -i FILE");
  const [mesh] = positionals;
  const { base, token } = config(io);
  const size = (await stat(values.input)).size;
  const started = Date.now();
  const counter = new TarCounter();
  const bar = progress(io, `import ${mesh}`, counter, started);
  const source = Readable.toWeb(createReadStream(values.input)).pipeThrough(
    new TransformStream({
      transform(chunk, controller) {
        counter.push(Buffer.from(chunk));
        bar.draw(false);
        controller.enqueue(chunk);
      },
    }),
  );
  let res;
  try {
    res = await fetch(`${base}/admin/meshes/${encodeURIComponent(mesh)}/import${values.replace ? "?replace=1" : ""}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/x-tar", "Content-Length": String(size) },
      body: source,
      duplex: "half",
    });
  } finally {
    bar.done();
  }
  if (!res.ok) throw await failure(res);
  const body = await res.json();
  const ms = Date.now() - started;
  io.stdout.write(
    values.json
      ? `${JSON.stringify({ ...body, seconds: ms / 1000 })}\n`
      : `imported ${mesh}${body.replaced ? " (replaced)" : ""}: ${body.objects + body.controlObjects} objects, ${body.storedFiles} stored files, ${formatBytes(size)} in ${(ms / 1000).toFixed(1)} s (${rate(size, ms)}) from ${values.input}\n`,
  );
  return 0;
}

/** Runs a command, turning usage mistakes into exit 2 and failures into one line and exit 1. */
async function guarded(command, argv, io) {
  try {
    return await command(argv, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`meshbox mesh: ${err.message}\n${usage}\n`);
      return 2;
    }
    io.stderr.write(`meshbox mesh: ${err.message}\n`);
    return 1;
  }
}

/** `meshbox mesh export <mesh> -o FILE`; resolves to the exit code. */
export const exportMesh = (argv, io) => guarded(exportArchive, argv, io);

/** `meshbox mesh import <mesh> -i FILE [--replace]`; resolves to the exit code. */
export const importMesh = (argv, io) => guarded(importArchive, argv, io);

/** The mesh group calls this for `export` and `import`; resolves to the exit code. */
export async function run(argv, io) {
  const [command, ...rest] = argv;
  if (command === "export") return exportMesh(rest, io);
  if (command === "import") return importMesh(rest, io);
  io.stderr.write(`meshbox mesh: unknown command ${command ?? "(none)"}\n${usage}\n`);
  return 2;
}
