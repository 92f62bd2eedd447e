import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWorker, type RunningWorker } from "./support/worker-process";

let worker: RunningWorker;
beforeAll(async () => {
  worker = await startWorker();
});
afterAll(async () => {
  await worker?.stop();
});

describe("the real worker under wrangler dev", () => {
  it("serves /sync/health on 127.0.0.1", async () => {
    const res = await fetch(`${worker.base}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, service: "meshbox", auth: ["open"] });
  });
});
