// Admin API for index shards (README "Index shards"; requireAdmin runs first in the route table):
// GET /admin/shards, POST /admin/shards/move, POST /admin/shards/rebalance. A move runs in the
// mesh's hub (MeshHub.moveIndex), so two moves of one mesh never overlap.
import type { Handler } from "../request-context";
import type { Env } from "../env";
import { badRequest, conflict, HttpError, notFound } from "../lib/errors";
import { DEFAULTS } from "../lib/config";
import { readJsonObject } from "../lib/body";
import { validateMeshId } from "../lib/mesh-id";
import { meshHub } from "../hub-client";
import type { MoveReport, MoveResult } from "../operations/shard-move";
import { planRebalance, readShardStatus } from "../operations/shard-status";

const json = (body: unknown, status = 200): Response =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

/** Moves one rebalance request runs at most (each is a copy of a whole mesh). */
const REBALANCE_DEFAULT_MOVES = 10;
const REBALANCE_MAX_MOVES = 100;

export const shardStatus: Handler = async (_request, env) => json(await readShardStatus(env));

function moved(result: MoveResult): MoveReport {
  if (result.ok) return result.report;
  if (result.status === 404) throw notFound(result.message);
  if (result.status === 409) throw conflict(result.message);
  throw badRequest(result.message);
}

async function moveOne(env: Env, mesh: string, to: number): Promise<MoveReport> {
  let result: MoveResult;
  try {
    result = await meshHub(env, mesh).moveIndex(mesh, to);
  } catch (err) {
    console.error(JSON.stringify({ level: "error", msg: "index move failed", mesh, to, error: String(err) }));
    throw new HttpError("unavailable", "The move did not finish (a shard or the hub failed); run it again to resume.");
  }
  return moved(result);
}

/** POST /admin/shards/move `{ mesh, shard }` → `{ mesh, from, to, rows, ms }`. */
export const moveMesh: Handler = async (request, env) => {
  const body = await readJsonObject(request, DEFAULTS.limits.jsonBody);
  const mesh = validateMeshId(body.mesh);
  if (typeof body.shard !== "number" || !Number.isInteger(body.shard)) throw badRequest("shard must be an integer.");
  return json(await moveOne(env, mesh, body.shard));
};

/** POST /admin/shards/rebalance `{ dryRun, maxMoves? }` → `{ dryRun, moves }`. */
export const rebalance: Handler = async (request, env) => {
  const body = await readJsonObject(request, DEFAULTS.limits.jsonBody);
  if (typeof body.dryRun !== "boolean") throw badRequest("dryRun must be true or false.");
  const maxMoves = body.maxMoves ?? REBALANCE_DEFAULT_MOVES;
  if (typeof maxMoves !== "number" || !Number.isInteger(maxMoves) || maxMoves < 1 || maxMoves > REBALANCE_MAX_MOVES) {
    throw badRequest(`maxMoves must be an integer from 1 to ${REBALANCE_MAX_MOVES}.`);
  }
  const plan = await planRebalance(env, maxMoves);
  if (body.dryRun) return json({ dryRun: true, moves: plan });
  const moves: MoveReport[] = [];
  for (const m of plan) moves.push(await moveOne(env, m.mesh, m.to));
  return json({ dryRun: false, moves });
};
