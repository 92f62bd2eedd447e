// The README capacity table's arithmetic (bench/capacity-model.mjs): one shard serves
// utilization x 1000 / S write statements a second, a flush costs W of them, shards add up, and
// storage holds fill x 10 GB / (rows x bytes per row) meshes per shard.
import { describe, expect, it } from "vitest";
import { ASSUMPTIONS, model, renderModel } from "../../bench/capacity-model.mjs";

const measured = { statements: { upsert: { median: 1 } }, bytesPerRow: { d1SizeAfterPerRow: 500 } };

describe("the capacity model", () => {
  it("gives one shard 0.7 x 1000 / S statements a second, split over W writes per flush", () => {
    const [one] = model(measured);
    expect(one!.shards).toBe(1);
    expect(one!.localFlushes).toEqual([700 / 3, 700]);
    expect(one!.productionFlushes).toEqual([140 / 3, 140]);
    // 140 flushes/s at 5 ms and one write: 1,400 devices every 10 s, 350 meshes of 4 devices.
    expect(one!.devicesEvery10s).toBeCloseTo(1_400);
    expect(one!.activeMeshes).toBeCloseTo(350);
  });

  it("scales every figure linearly with the number of shards, storage included", () => {
    const rows = model(measured);
    expect(rows.map((r) => r.shards)).toEqual(ASSUMPTIONS.shards);
    for (const r of rows) {
      expect(r.localFlushes[1]).toBeCloseTo(700 * r.shards);
      // 2,000 rows x 500 bytes = 1 MB a mesh; 80 % of 10 GB is 8,000 of them per shard.
      expect(r.storedMeshes).toBeCloseTo(8_000 * r.shards);
    }
  });

  it("follows a changed assumption", () => {
    const [one] = model(measured, { ...ASSUMPTIONS, utilization: 1, rowsPerMesh: 10_000, shards: [1] });
    expect(one!.localFlushes[1]).toBeCloseTo(1_000);
    expect(one!.storedMeshes).toBeCloseTo(1_600);
  });

  it("renders one markdown row per shard count", () => {
    const lines = renderModel(model(measured)).split("\n");
    expect(lines).toHaveLength(2 + ASSUMPTIONS.shards.length);
    expect(lines[2]).toMatch(/^\| 1 \| 233 \/ 700 \| 47 \/ 140 \| 1,400 \| 350 \| 8,000 \|$/);
  });
});
