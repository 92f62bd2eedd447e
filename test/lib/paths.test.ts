import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HttpError } from "../../worker/lib/errors";
import {
  MAX_PATH_BYTES,
  classifyPath,
  descendantPrefix,
  generationOf,
  nameOf,
  normalizeFilePath,
  normalizePath,
  objectKey,
  parentOf,
  recoveryKey,
  storedFileKey,
} from "../../worker/lib/paths";

function refusal(run: () => unknown): HttpError {
  try {
    run();
  } catch (err) {
    if (err instanceof HttpError) return err;
    throw err;
  }
  throw new Error("expected a refusal");
}

describe("normalizePath", () => {
  it("adds a leading slash, collapses repeated slashes and drops a trailing slash", () => {
    expect(normalizePath("App//changes///x.json")).toBe("/App/changes/x.json");
    expect(normalizePath("/App/")).toBe("/App");
    expect(normalizePath("/")).toBe("/");
    expect(normalizePath("///")).toBe("/");
  });

  it("refuses dot segments, control characters, backslashes, empty and non-string paths with invalid_path", () => {
    for (const bad of ["/a/../b", "..", "/a/.", "/a\u0000", "/a\u001f", "/a\u0085", "a\\b", "", 7, null]) {
      const err = refusal(() => normalizePath(bad));
      expect(err.status).toBe(400);
      expect(err.code).toBe("invalid_path");
    }
  });

  it("allows names that only contain dots besides other characters", () => {
    expect(normalizePath("/a/..b/.hidden/c.")).toBe("/a/..b/.hidden/c.");
  });

  it("counts the limit in UTF-8 bytes, not characters", () => {
    expect(normalizePath(`/${"é".repeat(511)}`)).toHaveLength(512);
    expect(refusal(() => normalizePath(`/${"é".repeat(512)}`)).code).toBe("invalid_path");
    expect(normalizePath(`/${"x".repeat(MAX_PATH_BYTES - 1)}`)).toHaveLength(MAX_PATH_BYTES);
    expect(refusal(() => normalizePath(`/${"x".repeat(MAX_PATH_BYTES)}`)).code).toBe("invalid_path");
  });

  it("either refuses with 400 or returns a canonical, idempotent path for any input (fuzz)", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 300 }), (raw) => {
        let out: string;
        try {
          out = normalizePath(raw);
        } catch (err) {
          expect(err).toBeInstanceOf(HttpError);
          expect((err as HttpError).status).toBe(400);
          return;
        }
        expect(out.startsWith("/")).toBe(true);
        expect(out).not.toMatch(/\/\//);
        expect(out === "/" || !out.endsWith("/")).toBe(true);
        expect(out.split("/").some((s) => s === "." || s === "..")).toBe(false);
        expect(normalizePath(out)).toBe(out);
      }),
      { numRuns: 2_000 },
    );
  });
});

describe("normalizeFilePath", () => {
  it("refuses the mesh root", () => {
    expect(refusal(() => normalizeFilePath("//")).code).toBe("invalid_path");
    expect(normalizeFilePath("a")).toBe("/a");
  });
});

describe("classifyPath", () => {
  const cases: [string, string][] = [
    ["/App/changes/000001700000000-0001-devA-chg_0190a1b2-c3d4.json", "change"],
    ["/App/changes/head.json", "head"],
    ["/App/manifest.json", "manifest"],
    ["/App/manifest-12.json", "generation"],
    ["/App/mainline/snapshot-2-server_relay_1.json", "snapshot"],
    ["/App/devices/devA.json", "device"],
    ["/App/changes/notes.txt", "other"],
    ["/App/pairing/offer.json", "other"],
  ];
  for (const [path, cls] of cases) {
    it(`classifies ${path} as ${cls}`, () => expect(classifyPath(path)).toBe(cls));
  }

  // Every HLC text a client version writes before `-chg_` (PROTOCOL.md section 3).
  const hlcShapes: [string, string][] = [
    ["15-digit ms", "000001700000000-0001-devA-chg_0190a1b2.json"],
    ["16-digit ms", "0001795315560016-0000-dev-chg_g1.json"],
    ["13-digit ms", "1700000000000-0001-devA-chg_x.json"],
    ["ISO timestamp", "2026-01-01T00:00:00.000Z_0001_dev1-chg_b2.json"],
    ["opaque", "hlc~v9.zz-chg_c3.json"],
    ["opaque with dashes and underscores", "a-b_c-chg_d-e_f.json"],
  ];
  for (const [shape, name] of hlcShapes) {
    it(`classifies a change file whose HLC is ${shape} as a change file`, () => {
      expect(classifyPath(`/App/changes/${name}`)).toBe("change");
    });
  }

  it("classifies a -chg_ name as a change file only in a folder named changes, with .json and text on both sides", () => {
    expect(classifyPath("/App/notes/2026-01-01T00:00:00.000Z_0001_dev1-chg_b2.json")).toBe("other");
    expect(classifyPath("/App/changes/sub/x-chg_y.json")).toBe("other");
    expect(classifyPath("/App/changes/x-chg_y.txt")).toBe("other");
    expect(classifyPath("/App/changes/-chg_y.json")).toBe("other");
    expect(classifyPath("/App/changes/x-chg_.json")).toBe("other");
    expect(classifyPath("/App/changes/x_chg_y.json")).toBe("other");
    expect(classifyPath("/changes/x-chg_y.json")).toBe("change");
  });

  it("reads the generation number of a manifest-<n>.json path", () => {
    expect(generationOf("/App/manifest-7.json")).toBe(7);
    expect(generationOf("/App/manifest.json")).toBeNull();
  });
});

describe("path parts and keys", () => {
  it("splits parents and names", () => {
    expect(parentOf("/a/b/c")).toBe("/a/b");
    expect(parentOf("/a")).toBe("/");
    expect(nameOf("/a/b/c")).toBe("c");
    expect(descendantPrefix("/")).toBe("/");
    expect(descendantPrefix("/a")).toBe("/a/");
  });

  it("builds R2 keys per object family", () => {
    expect(objectKey("m1", "/a/b")).toBe("m/m1/a/b");
    expect(storedFileKey("m1", "/files/x")).toBe("f/m1/files/x");
    expect(recoveryKey("L")).toBe("r/L");
  });

  it("refuses with 400 a path whose R2 key would exceed R2's 1,024-byte key limit", () => {
    const mesh = "m".repeat(128);
    const path = `/${"p".repeat(1024 - 3 - 128)}`;
    expect(objectKey(mesh, path)).toHaveLength(1024);
    expect(refusal(() => objectKey(mesh, `${path}p`)).code).toBe("invalid_path");
    expect(refusal(() => storedFileKey(mesh, `${path}p`)).code).toBe("invalid_path");
  });
});
