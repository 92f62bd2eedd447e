// Scheduled maintenance. PLACEHOLDER: the operations issue implements the cron work.
import type { Env } from "../env";

export async function runScheduled(_controller: ScheduledController, _env: Env, _ctx: ExecutionContext): Promise<void> {
  console.log(JSON.stringify({ level: "info", msg: "scheduled", did: [] }));
}
