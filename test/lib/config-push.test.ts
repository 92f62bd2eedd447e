// PUSH_HOLD_MS (worker/lib/config.ts): how long an isolate may hold writes to a mesh with no socket
// open is bounded by the max delay less a quiet window, so a socket that opens meanwhile still
// hears of them within the max delay.
import { describe, expect, it } from "vitest";
import { readConfig } from "../../worker/lib/config";

describe("PUSH_HOLD_MS", () => {
  it("defaults to the max delay less the quiet window", () => {
    expect(readConfig({}).pushHoldMs).toBe(900);
    expect(readConfig({ PUSH_QUIET_MS: "200", PUSH_MAX_DELAY_MS: "2000" }).pushHoldMs).toBe(1_800);
  });

  it("may be shorter, or 0 to tell the hub of every write at once, but never longer", () => {
    expect(readConfig({ PUSH_HOLD_MS: "250" }).pushHoldMs).toBe(250);
    expect(readConfig({ PUSH_HOLD_MS: "0" }).pushHoldMs).toBe(0);
    expect(readConfig({ PUSH_HOLD_MS: "5000" }).pushHoldMs).toBe(900);
    expect(readConfig({ PUSH_QUIET_MS: "1000", PUSH_MAX_DELAY_MS: "500" }).pushHoldMs).toBe(0);
  });

  it("holds for at most a quiet window while a socket is open, and never when holding is off", () => {
    expect(readConfig({}).pushListeningHoldMs).toBe(100);
    expect(readConfig({ PUSH_QUIET_MS: "250" }).pushListeningHoldMs).toBe(250);
    expect(readConfig({ PUSH_HOLD_MS: "40" }).pushListeningHoldMs).toBe(40);
    expect(readConfig({ PUSH_HOLD_MS: "0" }).pushListeningHoldMs).toBe(0);
  });

  it("refuses a value that is not a non-negative number, naming the var", () => {
    expect(() => readConfig({ PUSH_HOLD_MS: "soon" })).toThrow(/PUSH_HOLD_MS/);
  });
});
