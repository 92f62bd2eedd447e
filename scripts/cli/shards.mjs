// meshbox shards: the index shards (README "Index shards") over the admin API (/admin/shards):
// status, an online move of one mesh, and the rebalance plan (or its execution).
import { runGroup } from "./args.mjs";
import { adminFetch } from "./admin-client.mjs";
import { printJson, printTable } from "./output.mjs";

export const summary = "index shards: status, move a mesh, rebalance";

export const usage = `meshbox shards status [--json]
meshbox shards move <mesh> <shard> [--json]
meshbox shards rebalance [--dry-run] [--max-moves N] [--json]`;

const commands = {
  status: {
    spec: {},
    async run({ values }, io) {
      const answer = await adminFetch("/shards", {}, io);
      if (values.json) return printJson(io, answer);
      printTable(io, answer.shards, ["shard", "binding", "meshes", "objects", "available"]);
      for (const m of answer.moving) io.stdout.write(`moving ${m.mesh}: shard ${m.from} → ${m.to} (unfinished; run the move again)\n`);
    },
  },
  move: {
    spec: { positionals: ["<mesh>", "<shard>"] },
    async run({ values, positionals }, io) {
      const shard = Number(positionals[1]);
      const answer = await adminFetch("/shards/move", { method: "POST", body: { mesh: positionals[0], shard } }, io);
      if (values.json) return printJson(io, answer);
      io.stdout.write(`moved ${answer.mesh}: shard ${answer.from} → ${answer.to}, ${answer.rows} rows in ${answer.ms} ms\n`);
    },
  },
  rebalance: {
    spec: { options: { "dry-run": { type: "boolean" }, "max-moves": { type: "string" } } },
    async run({ values }, io) {
      const body = { dryRun: values["dry-run"] === true };
      if (values["max-moves"] !== undefined) body.maxMoves = Number(values["max-moves"]);
      const answer = await adminFetch("/shards/rebalance", { method: "POST", body }, io);
      if (values.json) return printJson(io, answer);
      if (answer.moves.length === 0) return void io.stdout.write("balanced: no move needed\n");
      printTable(io, answer.moves, ["mesh", "from", "to"]);
      io.stdout.write(answer.dryRun ? `${answer.moves.length} moves planned (dry run: nothing moved)\n` : `${answer.moves.length} meshes moved\n`);
    },
  },
};

export const run = (argv, io) => runGroup("shards", commands, usage, argv, io);
