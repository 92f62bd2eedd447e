// meshbox usage: tenant-wide totals (admin API /admin/usage).
import { parseCommand, reportError, formatUsage } from "./args.mjs";
import { adminFetch } from "./admin-client.mjs";
import { printJson, printRecord } from "./output.mjs";

export const summary = "usage: tenant-wide totals (meshes, objects, bytes by class, stored files, recovery)";
export const usage = `meshbox usage [--json]`;

export async function run(argv, io) {
  try {
    const { help, values } = parseCommand(argv, {});
    if (help) {
      io.stdout.write(`${formatUsage(usage)}\n`);
      return 0;
    }
    const totals = await adminFetch("/usage", {}, io);
    if (values.json) printJson(io, totals);
    else printRecord(io, totals);
    return 0;
  } catch (err) {
    return reportError(err, usage, io);
  }
}
