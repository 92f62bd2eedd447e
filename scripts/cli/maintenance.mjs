// meshbox maintenance: run the cron work (session purge, tombstones, idle cleanup, reconcile) now.
import { runGroup } from "./args.mjs";
import { adminFetch } from "./admin-client.mjs";
import { printJson, printRecord, printTable } from "./output.mjs";

export const summary = "maintenance: run the scheduled work now";
export const usage = `meshbox maintenance run [--json]`;

const commands = {
  run: {
    spec: {},
    async run({ values }, io) {
      const report = await adminFetch("/maintenance", { method: "POST" }, io);
      if (values.json) return printJson(io, report);
      const idle = report.idleCleanup.enabled
        ? `${report.idleCleanup.evicted.length} evicted (TTL ${report.idleCleanup.ttlDays} days)`
        : "off";
      printRecord(io, {
        at: report.at,
        sessionsDeleted: report.sessionsDeleted,
        tombstonesPurged: report.tombstonesPurged,
        hourlyBucketsPruned: report.hourlyBucketsPruned,
        idleCleanup: idle,
        reconciledMeshes: report.reconciled.length,
        errors: report.errors.length,
        ms: report.ms,
      });
      if (report.idleCleanup.enabled && report.idleCleanup.evicted.length > 0) {
        io.stdout.write("\nevicted:\n");
        printTable(io, report.idleCleanup.evicted, ["mesh", "roots", "r2Objects", "controlObjects", "complete", "recorded"]);
      }
      if (report.reconciled.length > 0) {
        io.stdout.write("\nreconciled:\n");
        printTable(io, report.reconciled, ["mesh", "added", "tombstoned", "fixed", "complete"]);
      }
      if (report.errors.length > 0) {
        io.stdout.write("\nerrors:\n");
        printTable(io, report.errors, ["task", "error"]);
      }
    },
  },
};

export const run = (argv, io) => runGroup("maintenance", commands, usage, argv, io);
