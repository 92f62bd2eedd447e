// The served OpenAPI description: valid OpenAPI 3.1, and complete against the route table.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Validator } from "@seriousme/openapi-schema-validator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWorker, type RunningWorker } from "./support/worker-process";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Every `r.get("/x/:p", …)`-style registration of worker/router.ts as "get /x/{p}" (the `r.all` 405 rows are not operations). */
function registeredRoutes(): string[] {
  const source = readFileSync(path.join(root, "worker", "router.ts"), "utf8");
  return [...source.matchAll(/\br\.(get|post|put|delete|patch)\("([^"]+)"/g)].map(
    (m) => `${m[1]} ${(m[2] ?? "").replace(/:(\w+)/g, "{$1}")}`,
  );
}

let worker: RunningWorker;
beforeAll(async () => {
  worker = await startWorker();
});
afterAll(async () => {
  await worker?.stop();
});

describe("GET /sync/openapi.json", () => {
  it("is a valid OpenAPI 3.1 document served without auth", async () => {
    const res = await fetch(`${worker.base}/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string };
    expect(doc.openapi).toBe("3.1.0");
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it("describes every route registered in worker/router.ts", async () => {
    const doc = (await (await fetch(`${worker.base}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const routes = registeredRoutes();
    expect(routes.length).toBeGreaterThan(20);
    const missing = routes.filter((route) => {
      const [method = "", p = ""] = route.split(" ");
      return doc.paths[p]?.[method] === undefined;
    });
    expect(missing, `routes missing from openapi.json: ${missing.join(", ")}`).toEqual([]);
  });

  it("is linked from the landing document", async () => {
    const res = await fetch(worker.base);
    expect(res.status).toBe(200);
    const landing = (await res.json()) as { openapi: string; version: string };
    expect(landing.openapi).toBe("/sync/openapi.json");
    // worker/lib/version.ts must follow package.json's version.
    expect(landing.version).toBe((JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { version: string }).version);
  });
});
