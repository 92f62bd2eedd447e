// meshbox migrate-upstream: moves meshes in from the upstream Interocitor Workers runtime (the
// Worker's LEGACY_DB / LEGACY_FILES bindings), one page per request until the server says done,
// printing one line per mesh. Re-running is safe: meshes already moved report "already-present".
import { parseCommand, reportError, UsageError } from "./args.mjs";
import { adminFetch } from "./admin-client.mjs";
import { printJson } from "./output.mjs";

export const summary = "move meshes in from the upstream Interocitor Workers runtime";
export const usage = `meshbox migrate-upstream (--mesh MESH | --all) [--dry-run] [--json]`;

/** Pages are one mesh each; this bounds a run at far more meshes than a tenant holds. */
const MAX_PAGES = 100_000;

export async function run(argv, io) {
  try {
    const parsed = parseCommand(argv, { options: { mesh: { type: "string" }, all: { type: "boolean" }, "dry-run": { type: "boolean" } } });
    if (parsed.help) {
      io.stdout.write(`usage: ${usage}\n`);
      return 0;
    }
    const { values } = parsed;
    if ((values.mesh === undefined) === (values.all === undefined)) throw new UsageError("give exactly one of --mesh or --all");
    const dryRun = values["dry-run"] === true;
    const meshes = [];
    let cursor;
    for (let page = 0; page < MAX_PAGES; page++) {
      const body = values.mesh !== undefined ? { mesh: values.mesh, dryRun } : { all: true, dryRun, ...(cursor ? { cursor } : {}) };
      const answer = await adminFetch("/migrate-upstream", { method: "POST", body }, io);
      for (const report of answer.meshes) {
        meshes.push(report);
        if (!values.json) {
          const why = [...report.reasons, ...report.skipped.map((s) => `skipped ${s.path}: ${s.reason}`)].join("; ");
          const counts = `control=${report.controlObjects} objects=${report.objects} stored=${report.storedFiles} bytes=${report.bytes}`;
          io.stdout.write(`${report.mesh}  ${report.status}  ${counts}${why ? `  ${why}` : ""}\n`);
        }
      }
      if (answer.nextCursor === null) break;
      cursor = answer.nextCursor;
    }
    if (values.json) printJson(io, { dryRun, meshes });
    return meshes.some((m) => m.status === "refused" || m.status === "failed") ? 1 : 0;
  } catch (err) {
    return reportError(err, usage, io);
  }
}
