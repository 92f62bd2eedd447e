// Model-based property test: any sequence of PUT / DELETE / GET / list-files / list-folders /
// metadata against one mesh agrees with a plain in-memory model of PROTOCOL.md sections 2-3.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { deleteFile, getFile, listNames, newMesh, post, putFile, textOf } from "./io-support";

const CHANGE = "000001700000000-0001-devA-chg_1.json";
const PATHS = ["/R/a", "/R/b", "/R/d/c", "/R/d/e/f", `/R/changes/${CHANGE}`, "/S/x"];
const FOLDERS = ["/", "/R", "/R/d", "/R/changes", "/S", "/R/d/e"];

type Op =
  | { kind: "put"; path: string; body: string }
  | { kind: "delete"; path: string }
  | { kind: "get"; path: string }
  | { kind: "list"; folder: string }
  | { kind: "folders"; folder: string }
  | { kind: "metadata"; path: string };

const anyPath = fc.constantFrom(...PATHS);
const anyTarget = fc.constantFrom(...PATHS, "/R", "/R/d", "/S");
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("put" as const), path: anyPath, body: fc.string({ maxLength: 8 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("delete" as const), path: anyTarget }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("get" as const), path: anyPath }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("list" as const), folder: fc.constantFrom(...FOLDERS) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("folders" as const), folder: fc.constantFrom(...FOLDERS) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("metadata" as const), path: anyPath }) },
);

const isChange = (path: string) => path.endsWith(CHANGE);
const under = (path: string, target: string) => path === target || path.startsWith(`${target}/`);
const parent = (path: string) => path.slice(0, path.lastIndexOf("/")) || "/";

class Model {
  /** Live objects. */
  live = new Map<string, string>();
  /** Deleted change files: still GETtable (grace), never listed, and a re-PUT keeps them deleted. */
  deletedChanges = new Map<string, string>();

  put(path: string, body: string): number {
    if (isChange(path)) {
      if (this.deletedChanges.has(path)) return 200;
      if (this.live.has(path)) return 200;
      this.live.set(path, body);
      return 201;
    }
    const existed = this.live.has(path);
    this.live.set(path, body);
    return existed ? 204 : 201;
  }

  delete(target: string): number {
    const hit = [...this.live.keys()].filter((p) => under(p, target));
    for (const p of hit) {
      if (isChange(p)) this.deletedChanges.set(p, this.live.get(p)!);
      this.live.delete(p);
    }
    return hit.length > 0 ? 204 : 404;
  }

  get(path: string): string | null {
    return this.live.get(path) ?? this.deletedChanges.get(path) ?? null;
  }

  list(folder: string): string[] {
    return [...this.live.keys()].filter((p) => parent(p) === folder).map((p) => p.slice(p.lastIndexOf("/") + 1)).sort();
  }

  folders(folder: string): string[] {
    const prefix = folder === "/" ? "/" : `${folder}/`;
    const names = new Set<string>();
    for (const p of this.live.keys()) {
      if (!p.startsWith(prefix)) continue;
      const rest = p.slice(prefix.length);
      if (rest.includes("/")) names.add(rest.slice(0, rest.indexOf("/")));
    }
    return [...names].sort();
  }
}

describe("the /file routes against a model", () => {
  it("agree with the model over random sequences of writes, deletes and reads", { timeout: 120_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 14 }), async (ops) => {
        const mesh = newMesh();
        const model = new Model();
        for (const o of ops) {
          switch (o.kind) {
            case "put":
              expect((await putFile(mesh, o.path, o.body)).status, `PUT ${o.path}`).toBe(model.put(o.path, o.body));
              break;
            case "delete":
              expect((await deleteFile(mesh, o.path)).status, `DELETE ${o.path}`).toBe(model.delete(o.path));
              break;
            case "get": {
              const res = await getFile(mesh, o.path);
              const want = model.get(o.path);
              expect(res.status, `GET ${o.path}`).toBe(want === null ? 404 : 200);
              const text = await textOf(res);
              if (want !== null) expect(text).toBe(want);
              break;
            }
            case "list":
              expect(await listNames(mesh, o.folder), `list ${o.folder}`).toEqual(model.list(o.folder));
              break;
            case "folders": {
              const res = await post(mesh, "list-folders", { path: o.folder });
              expect(await res.json(), `folders ${o.folder}`).toEqual({ folders: model.folders(o.folder) });
              break;
            }
            case "metadata": {
              const res = await post(mesh, "metadata", { path: o.path });
              expect(res.status, `metadata ${o.path}`).toBe(model.live.has(o.path) ? 200 : 404);
              await res.arrayBuffer();
              break;
            }
          }
        }
      }),
      { numRuns: 60, seed: 20261122 },
    );
  });
});
