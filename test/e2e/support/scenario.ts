// The common frame of a device scenario file: one real worker for the file (started before its
// tests, stopped after), fresh mesh ids, and devices pointed at that worker (closed at the end).
import { afterAll, beforeAll } from "vitest";
import { Device } from "./device";
import { startWorker, type RunningWorker } from "./worker-process";

export interface Scenario {
  /** The running worker; only valid inside tests and hooks. */
  worker(): RunningWorker;
  newMesh(): string;
  device(mesh: string, name: string): Device;
}

/** `vars` are passed to the worker (`--var NAME:VALUE`), e.g. to shorten a window. */
export function useScenarioWorker(options: { vars?: Record<string, string> } = {}): Scenario {
  let running: RunningWorker | undefined;
  const devices: Device[] = [];
  beforeAll(async () => {
    running = await startWorker({ frozenSources: true, ...(options.vars ? { vars: options.vars } : {}) });
  });
  afterAll(async () => {
    // Sockets first, so no device is left reconnecting to a worker that is gone.
    await Promise.all(devices.map((d) => d.close()));
    await running?.stop();
  });
  const worker = () => {
    if (running === undefined) throw new Error("useScenarioWorker: the worker is only running inside tests and hooks.");
    return running;
  };
  return {
    worker,
    newMesh: () => `mesh_${crypto.randomUUID()}`,
    device: (mesh, name) => {
      const d = new Device({ base: worker().base, mesh, deviceId: `${name}_${crypto.randomUUID().slice(0, 8)}` });
      devices.push(d);
      return d;
    },
  };
}
