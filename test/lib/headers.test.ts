// withHeaderChanges (worker/lib/headers.ts): the pipeline's header edits happen in place on the
// responses the Worker built, and on a copy of those whose headers are immutable.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { withHeaderChanges } from "../../worker/lib/headers";

describe("withHeaderChanges", () => {
  it("edits a response the Worker built in place, body untouched", async () => {
    const built = new Response("body", { status: 201, headers: { "Content-Type": "text/plain" } });
    const out = withHeaderChanges(built, (h) => h.set("X-Request-Id", "r1"));
    expect(out).toBe(built);
    expect(out.status).toBe(201);
    expect(out.headers.get("X-Request-Id")).toBe("r1");
    expect(await out.text()).toBe("body");
  });

  it("copies a response whose headers are immutable (a Durable Object's answer), keeping status, headers and body", async () => {
    const hub = env.MESH_HUB.get(env.MESH_HUB.idFromName(`headers-${crypto.randomUUID()}`));
    const answered = await hub.fetch("https://mesh-hub/notify");
    expect(() => answered.headers.set("X-Probe", "1")).toThrow(TypeError);
    const out = withHeaderChanges(answered, (h) => h.set("X-Request-Id", "r2"));
    expect(out).not.toBe(answered);
    expect(out.status).toBe(426);
    expect(out.headers.get("X-Request-Id")).toBe("r2");
    expect(out.headers.get("Content-Type")).toContain("application/json");
    expect(await out.json()).toMatchObject({ error: "upgrade_required" });
  });
});
