// Backup and restore as an operator does it: devices sync and compact, the mesh is exported with
// the CLI, wiped, imported back, and the devices carry on against the restored mesh without
// re-bootstrapping, while a new device joins from the restored snapshot.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Device } from "./support/device";
import { startWorker, type RunningWorker } from "./support/worker-process";
// @ts-expect-error: plain ESM module without type declarations
import { exportMesh, importMesh } from "../../scripts/cli/archive.mjs";

const ADMIN_TOKEN = "e2e-archive-admin-token-0123456789";
let worker: RunningWorker;
const devices: Device[] = [];
const dir = mkdtempSync(path.join(tmpdir(), "meshbox-archive-"));

beforeAll(async () => {
  worker = await startWorker({ frozenSources: true, vars: { ADMIN_TOKEN } });
});
afterAll(async () => {
  await Promise.all(devices.map((d) => d.close()));
  await worker?.stop();
});

function device(mesh: string, name: string): Device {
  const d = new Device({ base: worker.base, mesh, deviceId: `${name}_${crypto.randomUUID().slice(0, 8)}` });
  // A restored mesh must look unchanged: any bootstrap would be a client starting over.
  d.bootstrap = async () => {
    throw new Error(`${name} tried to bootstrap`);
  };
  devices.push(d);
  return d;
}

/** The CLI's io, output captured. */
function cliIo() {
  let out = "";
  let err = "";
  const io = {
    stdout: { write: (s: string) => ((out += s), true) },
    stderr: { write: (s: string) => ((err += s), true) },
    stdin: process.stdin,
    env: { MESHBOX_URL: worker.base, MESHBOX_ADMIN_TOKEN: ADMIN_TOKEN },
    isTTY: false,
  };
  return { io, out: () => out, err: () => err };
}

async function admin(method: string, route: string): Promise<Response> {
  return fetch(`${worker.base}/admin/${route}`, { method, headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
}

async function manifestText(d: Device): Promise<string | null> {
  return d.readText(d.path("manifest.json"));
}

describe("mesh export, wipe and import (device simulator)", () => {
  it("devices keep syncing against the restored mesh without re-bootstrapping, and a new device joins from its snapshot", async () => {
    const mesh = `mesh_${crypto.randomUUID()}`;
    const first = new Device({ base: worker.base, mesh, deviceId: `founder_${crypto.randomUUID().slice(0, 8)}` });
    devices.push(first);
    await first.connect();
    const a = device(mesh, "alice");
    const b = device(mesh, "bob");
    await a.connect();
    await b.connect();
    a.write({ title: "before export", owner: "alice" });
    await a.flush();
    await b.pull();
    const compacted = await b.compact();
    expect(compacted.ok).toBe(true);
    b.write({ note: "after compaction" });
    await b.flush();
    await a.pull();
    expect(await a.loadManifest()).toBe(true);
    const generation = a.generation;
    expect(generation).toBe(compacted.ok ? compacted.generation : -1);
    const pointer = await manifestText(a);
    // Change files the compaction deleted are still listed through the listing window; an archive
    // carries live objects only (the snapshot covers those), so they do not come back.
    const covered = new Set(compacted.ok ? compacted.deleted : []);
    const changesBefore = (await a.listFiles(a.path("changes")))
      .filter((f) => !covered.has(f.name))
      .map((f) => [f.name, f.size, f.etag]);

    const file = path.join(dir, `${mesh}.tar`);
    const exported = cliIo();
    expect(await exportMesh([mesh, "-o", file], exported.io)).toBe(0);
    expect(exported.out()).toMatch(new RegExp(`^exported ${mesh}: \\d+ objects, .+ to ${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\n$`));

    // Portable: a stock tar lists it, full paths from the pax headers.
    const listed = execFileSync("tar", ["-tf", file], { encoding: "utf8" }).split("\n");
    expect(listed).toContain("control/MyApp/manifest.json");
    expect(listed).toContain(`objects${compacted.ok ? compacted.snapshotPath : ""}`);
    expect(listed[0]).toBe("meshbox-archive.json");

    const wiped = await admin("DELETE", `meshes/${mesh}`);
    expect(wiped.status).toBe(200);
    expect(await manifestText(a)).toBeNull();

    const imported = cliIo();
    expect(await importMesh([mesh, "-i", file], imported.io)).toBe(0);
    expect(imported.out()).toMatch(new RegExp(`^imported ${mesh}: \\d+ objects, 0 stored files, `));

    // The same committed state: same pointer bytes, same generation, same change files.
    expect(await manifestText(a)).toBe(pointer);
    expect((await a.listFiles(a.path("changes"))).map((f) => [f.name, f.size, f.etag])).toEqual(changesBefore);
    await a.connect();
    await b.connect();
    expect(a.generation).toBe(generation);
    expect(b.generation).toBe(generation);
    a.write({ title: "after import" });
    await a.flush();
    await b.pull();
    expect(b.rows.get("title")?.value).toBe("after import");
    expect(b.rows.get("note")?.value).toBe("after compaction");

    const late = device(mesh, "carol");
    await late.connect();
    expect(late.generation).toBe(generation);
    expect(Object.fromEntries([...late.rows].map(([k, v]) => [k, v.value]))).toEqual({
      title: "after import",
      owner: "alice",
      note: "after compaction",
    });
  });

  it("refuses to import over a non-empty mesh (409) and a corrupt archive (400), exit 1 with the reason", async () => {
    const mesh = `mesh_${crypto.randomUUID()}`;
    const d = device(mesh, "dora");
    d.bootstrap = Device.prototype.bootstrap;
    await d.connect();
    d.write({ k: "v" });
    await d.flush();
    const file = path.join(dir, `${mesh}.tar`);
    // Through the installed entry point, as an operator runs it.
    const cli = path.join(import.meta.dirname, "..", "..", "scripts", "meshbox-cli.mjs");
    const printed = execFileSync(process.execPath, [cli, "mesh", "export", mesh, "-o", file], {
      encoding: "utf8",
      env: { ...process.env, MESHBOX_URL: worker.base, MESHBOX_ADMIN_TOKEN: ADMIN_TOKEN },
    });
    expect(printed).toMatch(new RegExp(`^exported ${mesh}: \\d+ objects, `));

    const busy = cliIo();
    expect(await importMesh([mesh, "-i", file], busy.io)).toBe(1);
    expect(busy.err()).toBe(`meshbox mesh: HTTP 409 conflict: The mesh ${mesh} is not empty; wipe it first, or import with ?replace=1 (CLI --replace).\n`);
    const replaced = cliIo();
    replaced.io.isTTY = true;
    expect(await importMesh([mesh, "-i", file, "--replace"], replaced.io)).toBe(0);
    expect(replaced.out()).toContain("(replaced)");
    // On a TTY the progress line is redrawn on stderr: objects, bytes, rate.
    expect(replaced.err()).toMatch(new RegExp(`\\r\\x1b\\[2Kimport ${mesh}: \\d+ objects, [0-9.]+ (B|KiB|MiB), [0-9.]+ MiB/s\\n$`));

    const target = `mesh_${crypto.randomUUID()}`;
    const bytes = readFileSync(file);
    const corrupt = path.join(dir, `${target}-cut.tar`);
    writeFileSync(corrupt, bytes.subarray(0, bytes.length - 2048));
    const cut = cliIo();
    expect(await importMesh([target, "-i", corrupt], cut.io)).toBe(1);
    expect(cut.err()).toMatch(/^meshbox mesh: HTTP 400 bad_request: The archive /);
    const stats = await admin("GET", `meshes/${target}`);
    // Nothing was imported: the admin stats know no such mesh.
    expect(stats.status).toBe(404);
    await stats.arrayBuffer();

    const usage = cliIo();
    expect(await importMesh([target], usage.io)).toBe(2);
    expect(usage.err()).toContain("usage: meshbox mesh export");
  });
});
