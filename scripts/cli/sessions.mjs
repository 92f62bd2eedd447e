// meshbox sessions: the session JWTs minted from API keys (admin API /admin/sessions).
import { positiveInt, runGroup } from "./args.mjs";
import { adminFetch, enc } from "./admin-client.mjs";
import { printJson, printTable } from "./output.mjs";

export const summary = "sessions: list, revoke";
export const usage = `meshbox sessions list [--mesh PATTERN] [--include-expired] [--limit N] [--json]
meshbox sessions revoke <session-id> [--json]`;

const commands = {
  list: {
    spec: { options: { mesh: { type: "string" }, "include-expired": { type: "boolean" }, limit: { type: "string" } } },
    async run({ values }, io) {
      const query = new URLSearchParams();
      if (values.mesh !== undefined) query.set("mesh", values.mesh);
      if (values["include-expired"]) query.set("includeExpired", "1");
      const limit = positiveInt(values.limit, "limit", 99_999);
      if (limit !== undefined) query.set("limit", String(limit));
      const qs = query.toString();
      const answer = await adminFetch(`/sessions${qs === "" ? "" : `?${qs}`}`, {}, io);
      if (values.json) return printJson(io, answer);
      printTable(io, answer.sessions, ["jti", "keyId", "subject", "meshPattern", "scope", "issuedAt", "expiresAt", "revokedAt"]);
    },
  },
  revoke: {
    spec: { positionals: ["<session-id>"] },
    async run({ values, positionals }, io) {
      const answer = await adminFetch(`/sessions/${enc(positionals[0])}`, { method: "DELETE" }, io);
      if (values.json) return printJson(io, answer);
      io.stdout.write(`revoked session ${answer.session.jti} at ${answer.session.revokedAt}\n`);
    },
  },
};

export const run = (argv, io) => runGroup("sessions", commands, usage, argv, io);
