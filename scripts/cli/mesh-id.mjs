// meshbox mesh-id: issue a checksummed mesh id (needs MESH_ID_CHECKSUM_SECRET on the server).
import { runGroup } from "./args.mjs";
import { adminFetch } from "./admin-client.mjs";
import { printJson } from "./output.mjs";

export const summary = "mesh-id: issue a checksummed mesh id";
export const usage = `meshbox mesh-id issue [--json]`;

const commands = {
  issue: {
    spec: {},
    async run({ values }, io) {
      const answer = await adminFetch("/mesh-ids", { method: "POST" }, io);
      if (values.json) return printJson(io, answer);
      io.stdout.write(`${answer.meshId}\n`);
    },
  },
};

export const run = (argv, io) => runGroup("mesh-id", commands, usage, argv, io);
