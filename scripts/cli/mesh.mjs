// meshbox mesh: every mesh at a glance (list), one mesh's stats, wipe and reconcile
// (admin API /admin/meshes). export/import live in archive.mjs.
import { createInterface } from "node:readline/promises";
import { CommandError, positiveInt, runGroup, UsageError } from "./args.mjs";
import { AdminError, adminFetch, enc } from "./admin-client.mjs";
import { printJson, printRecord, printTable } from "./output.mjs";

export const summary = "meshes: list, stats, wipe, reconcile, export, import";
export const usage = `meshbox mesh list [--prefix P] [--sort lastWrite|bytes|objects] [--order desc|asc] [--limit N] [--cursor C] [--json]
meshbox mesh stats <mesh> [--json]
meshbox mesh wipe <mesh> [--dry-run] [--yes] [--json]
meshbox mesh reconcile <mesh> [--json]
meshbox mesh export <mesh> -o FILE
meshbox mesh import <mesh> -i FILE [--replace]`;

const MAX_RECONCILE_REQUESTS = 1000;

/** The server's 404 for a mesh that holds nothing, said the same way by every command. */
async function forMesh(mesh, call) {
  try {
    return await call();
  } catch (err) {
    if (err instanceof AdminError && err.status === 404 && err.code === "not_found") {
      throw new CommandError(`no such mesh: ${mesh}`);
    }
    throw err;
  }
}

/** Asks for the mesh id again; true only when the typed line is exactly the id. */
async function confirmMeshId(mesh, io) {
  const rl = createInterface({ input: io.stdin, output: io.stderr, terminal: false });
  try {
    const typed = await rl.question(`Wiping deletes every object of mesh ${mesh}. Type the mesh id to confirm: `);
    return typed.trim() === mesh;
  } catch {
    return false; // stdin closed before a line: no confirmation
  } finally {
    rl.close();
  }
}

const archive = (command) => ({
  raw: true,
  async run(words, io) {
    let module;
    try {
      module = await import("./archive.mjs");
    } catch (err) {
      if (err?.code !== "ERR_MODULE_NOT_FOUND") throw err;
      throw new CommandError(`mesh ${command} is not part of this version of the CLI`);
    }
    return module.run([command, ...words], io);
  },
});

const commands = {
  list: {
    spec: {
      options: {
        prefix: { type: "string" },
        sort: { type: "string" },
        order: { type: "string" },
        limit: { type: "string" },
        cursor: { type: "string" },
      },
      enums: { sort: ["lastWrite", "bytes", "objects"], order: ["desc", "asc"] },
    },
    async run({ values }, io) {
      const query = new URLSearchParams();
      for (const name of ["prefix", "sort", "order", "cursor"]) if (values[name] !== undefined) query.set(name, values[name]);
      const limit = positiveInt(values.limit, "limit", 500);
      if (limit !== undefined) query.set("limit", String(limit));
      const qs = query.toString();
      const answer = await adminFetch(`/meshes${qs === "" ? "" : `?${qs}`}`, {}, io);
      if (values.json) return printJson(io, answer);
      printTable(io, answer.meshes, ["mesh", "objects", "bytes", "changeFiles", "storedFiles", "storedBytes", "lastWriteAt", "lastReadAt"]);
      if (answer.nextCursor !== null) io.stdout.write(`\nmore: add --cursor ${answer.nextCursor}\n`);
    },
  },
  stats: {
    spec: { positionals: ["<mesh>"] },
    async run({ values, positionals: [mesh] }, io) {
      const stats = await forMesh(mesh, () => adminFetch(`/meshes/${enc(mesh)}`, {}, io));
      if (values.json) return printJson(io, stats);
      printRecord(io, stats);
    },
  },
  wipe: {
    spec: { positionals: ["<mesh>"], options: { yes: { type: "boolean" }, "dry-run": { type: "boolean" } } },
    async run({ values, positionals: [mesh] }, io) {
      if (values["dry-run"]) {
        const plan = await forMesh(mesh, () => adminFetch(`/meshes/${enc(mesh)}?dryRun=1`, { method: "DELETE" }, io));
        if (values.json) return printJson(io, plan);
        io.stdout.write(`dry run: wiping mesh ${mesh} would remove\n`);
        printRecord(io, plan);
        return 0;
      }
      if (io.isTTY) {
        // On a terminal the mesh id is typed again (a typo'd id then refuses instead of wiping).
        await forMesh(mesh, () => adminFetch(`/meshes/${enc(mesh)}`, {}, io));
        if (!(await confirmMeshId(mesh, io))) {
          io.stderr.write(`meshbox: the typed id does not match ${mesh}; nothing was wiped\n`);
          return 1;
        }
      } else if (!values.yes) {
        throw new UsageError(`wiping deletes every object of mesh ${mesh}; add --yes to confirm`);
      }
      const result = await forMesh(mesh, () => adminFetch(`/meshes/${enc(mesh)}`, { method: "DELETE" }, io));
      if (values.json) return printJson(io, result);
      printRecord(io, result);
      if (!result.complete) io.stdout.write("\nNot everything was deleted in one go: run the wipe again to finish.\n");
    },
  },
  reconcile: {
    // The server stops at a time/page budget and says where to resume; keep going until done.
    spec: { positionals: ["<mesh>"] },
    async run({ values, positionals: [mesh] }, io) {
      const total = { mesh, scanned: { r2: 0, hub: 0, heads: 0 }, added: 0, tombstoned: 0, fixed: 0, complete: false, requests: 0 };
      let startAfter;
      for (let i = 0; i < MAX_RECONCILE_REQUESTS; i++) {
        const report = await adminFetch(
          `/meshes/${enc(mesh)}/reconcile`,
          { method: "POST", body: startAfter === undefined ? undefined : { startAfter } },
          io,
        );
        total.requests++;
        for (const k of ["r2", "hub", "heads"]) total.scanned[k] += report.scanned[k];
        total.added += report.added;
        total.tombstoned += report.tombstoned;
        total.fixed += report.fixed;
        total.complete = report.complete;
        const repaired = report.added + report.tombstoned + report.fixed;
        // Same resume point and nothing repaired: another call would do exactly the same.
        if (report.complete || report.resumeAfter === null || (report.resumeAfter === (startAfter ?? "") && repaired === 0)) break;
        startAfter = report.resumeAfter;
      }
      if (values.json) return printJson(io, total);
      printRecord(io, total);
      if (!total.complete) io.stdout.write("\nNot every object could be compared within the server's budget: run it again.\n");
    },
  },
  export: archive("export"),
  import: archive("import"),
};

export const run = (argv, io) => runGroup("mesh", commands, usage, argv, io);
