// meshbox keys: API keys that devices exchange for sessions (admin API /admin/keys).
import { runGroup } from "./args.mjs";
import { adminFetch, enc } from "./admin-client.mjs";
import { printJson, printRecord, printTable } from "./output.mjs";

export const summary = "API keys: create, list, revoke";
export const usage = `meshbox keys create --name NAME --mesh PATTERN [--access full|readonly] [--json]
meshbox keys list [--json]
meshbox keys revoke <key-id> [--json]`;

const commands = {
  create: {
    spec: {
      options: { name: { type: "string" }, mesh: { type: "string" }, access: { type: "string" } },
      required: ["name", "mesh"],
      enums: { access: ["full", "readonly"] },
    },
    async run({ values }, io) {
      const key = await adminFetch(
        "/keys",
        { method: "POST", body: { name: values.name, meshPattern: values.mesh, access: values.access ?? "full" } },
        io,
      );
      if (values.json) return printJson(io, key);
      printRecord(io, key);
      io.stdout.write("\nThe key is shown only this once: store it now.\n");
    },
  },
  list: {
    spec: {},
    async run({ values }, io) {
      const answer = await adminFetch("/keys", {}, io);
      if (values.json) return printJson(io, answer);
      printTable(io, answer.keys, ["id", "name", "meshPattern", "access", "createdAt", "lastUsedAt", "revokedAt"]);
    },
  },
  revoke: {
    spec: { positionals: ["<key-id>"] },
    async run({ values, positionals }, io) {
      const answer = await adminFetch(`/keys/${enc(positionals[0])}`, { method: "DELETE" }, io);
      if (values.json) return printJson(io, answer);
      const { key } = answer;
      io.stdout.write(`revoked key ${key.id} (${key.name}) at ${key.revokedAt}; sessions revoked: ${key.sessionsRevoked}\n`);
    },
  },
};

export const run = (argv, io) => runGroup("keys", commands, usage, argv, io);
