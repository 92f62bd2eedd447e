import { describe, expect, it } from "vitest";
import {
  checkMeshIdChecksum,
  checksumTag,
  issueChecksummedMeshId,
  isValidMeshPattern,
  meshPatternCovers,
  meshPatternWithin,
  meshPatternsOverlap,
} from "../../worker/lib/mesh-id";
import { HttpError } from "../../worker/lib/errors";
import { authEnv, call, uniqueMesh } from "./auth-fixtures";
import { meshBearerToken } from "../../worker/auth";

const SECRET = "checksum-secret-for-tests";

async function refusal(promise: Promise<unknown>): Promise<{ status: number; code: string } | null> {
  try {
    await promise;
    return null;
  } catch (err) {
    if (err instanceof HttpError) return { status: err.status, code: err.code };
    throw err;
  }
}

describe("checksummed mesh ids", () => {
  it("issues <uuid>.<tag> ids whose tag is 8 bytes of HMAC-SHA256 in base64url", async () => {
    const id = await issueChecksummedMeshId(SECRET);
    const match = /^([0-9a-f-]{36})\.([A-Za-z0-9_-]{11})$/.exec(id);
    expect(match).not.toBeNull();
    const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(SECRET), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(match![1])));
    const expected = btoa(String.fromCharCode(...mac.subarray(0, 8))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    expect(match![2]).toBe(expected);
    expect(await checksumTag(SECRET, match![1]!)).toBe(expected);
  });

  it("accepts a correctly tagged id and refuses a wrong tag with 400", async () => {
    const id = await issueChecksummedMeshId(SECRET);
    expect(await checkMeshIdChecksum(id, { secret: SECRET, required: false })).toBe(id);
    const flipped = `${id.slice(0, -1)}${id.endsWith("A") ? "B" : "A"}`;
    expect(await refusal(checkMeshIdChecksum(flipped, { secret: SECRET, required: false }))).toEqual({
      status: 400,
      code: "invalid_mesh_id",
    });
    expect(await refusal(checkMeshIdChecksum(id, { secret: "another-secret", required: true }))).toEqual({
      status: 400,
      code: "invalid_mesh_id",
    });
  });

  it("treats plain ids as plain unless checksummed ids are required", async () => {
    expect(await checkMeshIdChecksum("main", { secret: SECRET, required: false })).toBe("main");
    expect(await checkMeshIdChecksum("main", { secret: undefined, required: false })).toBe("main");
    expect(await refusal(checkMeshIdChecksum("main", { secret: SECRET, required: true }))).toEqual({
      status: 400,
      code: "invalid_mesh_id",
    });
  });

  it("treats a tagged-looking id as a plain name when no secret is configured", async () => {
    const id = `${crypto.randomUUID()}.AAAAAAAAAAA`;
    expect(await checkMeshIdChecksum(id, { secret: undefined, required: false })).toBe(id);
  });

  it("refuses to run with ids required but no secret (503)", async () => {
    expect(await refusal(checkMeshIdChecksum("main", { secret: undefined, required: true }))).toEqual({
      status: 503,
      code: "auth_not_configured",
    });
  });
});

describe("GET /sync/io/<mesh>/health with REQUIRE_CHECKSUMMED_MESH_IDS=1", () => {
  const strict = () =>
    authEnv({ SESSION_SIGNING_KEY: undefined, MESH_TOKEN_SECRET: "s", MESH_ID_CHECKSUM_SECRET: SECRET, REQUIRE_CHECKSUMMED_MESH_IDS: "1" });

  it("refuses a plain id with 400 before auth", async () => {
    const res = await call(strict(), `/io/${uniqueMesh()}/health`);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: "invalid_mesh_id",
      message: "This deployment accepts only checksummed mesh ids (<uuid>.<tag>) issued by its operator.",
    });
  });

  it("refuses a mistyped checksummed id with 400 and passes a good one on to auth", async () => {
    const id = await issueChecksummedMeshId(SECRET);
    const typo = `${id.slice(0, 3)}${id[3] === "0" ? "1" : "0"}${id.slice(4)}`;
    expect((await call(strict(), `/io/${typo}/health`)).status).toBe(400);
    const res = await call(strict(), `/io/${id}/health`);
    expect(res.status).toBe(401);
    const admitted = await call(strict(), `/io/${id}/health`, {
      headers: { Authorization: `Bearer ${await meshBearerToken(id, "s")}` },
    });
    expect(admitted.status).toBe(200);
    expect(await admitted.json()).toEqual({ ok: true, mesh: id });
  });
});

describe("mesh patterns", () => {
  it("accepts exact ids, * and prefixes ending in *", () => {
    for (const p of ["main", "*", "team-*", "a*"]) expect(isValidMeshPattern(p), p).toBe(true);
    for (const p of ["", "**", "*a", "a*b", "-x*", "a b", 7, null]) expect(isValidMeshPattern(p), String(p)).toBe(false);
  });

  it("covers meshes by exact id, prefix or everything", () => {
    expect(meshPatternCovers("*", "x")).toBe(true);
    expect(meshPatternCovers("team-*", "team-a")).toBe(true);
    expect(meshPatternCovers("team-*", "team-")).toBe(true);
    expect(meshPatternCovers("team-*", "teams")).toBe(false);
    expect(meshPatternCovers("main", "main")).toBe(true);
    expect(meshPatternCovers("main", "main2")).toBe(false);
  });

  it("tells a narrowing from a widening", () => {
    expect(meshPatternWithin("team-a", "team-*")).toBe(true);
    expect(meshPatternWithin("team-a*", "team-*")).toBe(true);
    expect(meshPatternWithin("team-*", "team-*")).toBe(true);
    expect(meshPatternWithin("*", "*")).toBe(true);
    expect(meshPatternWithin("anything*", "*")).toBe(true);
    expect(meshPatternWithin("team*", "team-*")).toBe(false);
    expect(meshPatternWithin("*", "team-*")).toBe(false);
    expect(meshPatternWithin("main*", "main")).toBe(false);
    expect(meshPatternWithin("other", "main")).toBe(false);
  });

  it("detects overlapping patterns", () => {
    expect(meshPatternsOverlap("team-*", "team-a")).toBe(true);
    expect(meshPatternsOverlap("team-a", "team-*")).toBe(true);
    expect(meshPatternsOverlap("t*", "team-*")).toBe(true);
    expect(meshPatternsOverlap("a*", "b*")).toBe(false);
    expect(meshPatternsOverlap("main", "other")).toBe(false);
  });
});
