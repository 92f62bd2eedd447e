// meshbox grants: mesh grants for identity-provider subjects (the token's `sub`), over the admin
// API (/admin/grants). Parsing, errors and output are the shared ones of the other groups.
import { runGroup } from "./args.mjs";
import { adminFetch, enc } from "./admin-client.mjs";
import { printJson, printTable } from "./output.mjs";

export const summary = "grant identity-provider subjects access to meshes";

export const usage = `meshbox grants add --sub SUBJECT --mesh PATTERN [--access full|readonly] [--json]
meshbox grants list [--sub SUBJECT] [--json]
meshbox grants revoke <grant-id> [--json]`;

// SUBJECT is the token's sub claim exactly (e.g. "auth0|64f0…", "user_2abc…").
const COLUMNS = ["id", "subject", "meshPattern", "access", "createdAt"];

const commands = {
  add: {
    spec: {
      options: { sub: { type: "string" }, mesh: { type: "string" }, access: { type: "string" } },
      required: ["sub", "mesh"],
      enums: { access: ["full", "readonly"] },
    },
    async run({ values }, io) {
      const grant = await adminFetch(
        "/grants",
        { method: "POST", body: { subject: values.sub, meshPattern: values.mesh, access: values.access ?? "full" } },
        io,
      );
      if (values.json) return printJson(io, grant);
      printTable(io, [grant], COLUMNS);
    },
  },
  list: {
    spec: { options: { sub: { type: "string" } } },
    async run({ values }, io) {
      const query = values.sub === undefined ? "" : `?sub=${enc(values.sub)}`;
      const answer = await adminFetch(`/grants${query}`, {}, io);
      if (values.json) return printJson(io, answer);
      printTable(io, answer.grants, COLUMNS);
    },
  },
  revoke: {
    spec: { positionals: ["<grant-id>"] },
    async run({ values, positionals }, io) {
      const answer = await adminFetch(`/grants/${enc(positionals[0])}`, { method: "DELETE" }, io);
      if (values.json) return printJson(io, answer);
      io.stdout.write(`revoked ${answer.grant.id} (${answer.grant.subject} → ${answer.grant.meshPattern})\n`);
    },
  },
};

export const run = (argv, io) => runGroup("grants", commands, usage, argv, io);
