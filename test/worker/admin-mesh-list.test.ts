import { describe, expect, it } from "vitest";
import { adminEnv, asAdmin, call, putFile } from "./admin-support";

const target = adminEnv();

interface Entry { mesh: string; objects: number; bytes: number; changeFiles: number; storedFiles: number; storedBytes: number; lastWriteAt: string | null; lastReadAt: string | null }
interface Page { meshes: Entry[]; nextCursor: string | null }

async function list(query: string): Promise<Page> {
  const res = await call(target, `/admin/meshes?${query}`, asAdmin());
  expect(res.status).toBe(200);
  return (await res.json()) as Page;
}

/** Three meshes under a fresh prefix holding 1, 2 and 3 files of growing size, written in order. */
async function seed(): Promise<string> {
  const prefix = `lst${crypto.randomUUID().slice(0, 8)}-`;
  for (let n = 1; n <= 3; n++) {
    for (let f = 0; f < n; f++) {
      expect((await putFile(target, `${prefix}${n}`, `/App/f${f}.bin`, "x".repeat(10 * n))).status).toBe(201);
    }
  }
  return prefix;
}

describe("GET /sync/admin/meshes", () => {
  it("lists only the meshes under the prefix with their counts, sorted by objects", async () => {
    const prefix = await seed();
    const page = await list(`prefix=${prefix}&sort=objects&order=desc`);
    expect(page.nextCursor).toBeNull();
    expect(page.meshes.map((m) => [m.mesh, m.objects, m.bytes, m.changeFiles, m.storedFiles])).toEqual([
      [`${prefix}3`, 3, 90, 0, 0],
      [`${prefix}2`, 2, 40, 0, 0],
      [`${prefix}1`, 1, 10, 0, 0],
    ]);
    expect(typeof page.meshes[0]?.lastWriteAt).toBe("string");
  });

  it("sorts by bytes ascending and by last write", async () => {
    const prefix = await seed();
    expect((await list(`prefix=${prefix}&sort=bytes&order=asc`)).meshes.map((m) => m.mesh)).toEqual([`${prefix}1`, `${prefix}2`, `${prefix}3`]);
    const byWrite = (await list(`prefix=${prefix}&sort=lastWrite`)).meshes;
    const times = byWrite.map((m) => Date.parse(m.lastWriteAt ?? ""));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
  });

  it("pages with the cursor without repeating or skipping a mesh", async () => {
    const prefix = await seed();
    const first = await list(`prefix=${prefix}&sort=objects&order=asc&limit=2`);
    expect(first.meshes.map((m) => m.mesh)).toEqual([`${prefix}1`, `${prefix}2`]);
    expect(first.nextCursor).not.toBeNull();
    const second = await list(`prefix=${prefix}&sort=objects&order=asc&limit=2&cursor=${first.nextCursor}`);
    expect(second.meshes.map((m) => m.mesh)).toEqual([`${prefix}3`]);
    expect(second.nextCursor).toBeNull();
  });

  it("answers 400 for a bad sort, order, limit, prefix or cursor", async () => {
    for (const q of ["sort=size", "order=up", "limit=0", "limit=501", "limit=x", "prefix=a/b", "cursor=%%%", "sort=bytes&limit=1&cursor=eyJzIjoib2JqZWN0cyIsIm8iOiJkZXNjIiwidiI6MSwibSI6ImEifQ"]) {
      const res = await call(target, `/admin/meshes?${q}`, asAdmin());
      expect(res.status, q).toBe(400);
      expect(((await res.json()) as { error: string }).error, q).toBe("bad_request");
    }
  });

  it("needs the admin token and answers 405 for other methods", async () => {
    expect((await call(target, "/admin/meshes")).status).toBe(401);
    expect((await call(target, "/admin/meshes", asAdmin({ method: "POST" }))).status).toBe(405);
    expect((await call(target, "/admin/usage", asAdmin({ method: "DELETE" }))).status).toBe(405);
  });
});

describe("GET /sync/admin/usage", () => {
  it("totals meshes, objects and bytes across the tenant, growing with a write", async () => {
    const before = (await (await call(target, "/admin/usage", asAdmin())).json()) as { meshes: number; objects: number; bytes: Record<string, number>; storedFiles: number; recovery: { count: number; bytes: number } };
    expect(Object.keys(before.bytes).sort()).toEqual(["change", "control", "other", "snapshot", "stored"]);
    await putFile(target, `usage-${crypto.randomUUID()}`, "/App/x.bin", "12345");
    const after = (await (await call(target, "/admin/usage", asAdmin())).json()) as typeof before;
    expect(after.meshes).toBe(before.meshes + 1);
    expect(after.objects).toBe(before.objects + 1);
    expect(after.bytes.other).toBe((before.bytes.other ?? 0) + 5);
    expect(after.recovery).toEqual(before.recovery);
  });
});
