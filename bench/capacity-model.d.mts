// Types of capacity-model.mjs, for its test.
export interface Measured {
  statements: { upsert: { median: number } };
  bytesPerRow: { d1SizeAfterPerRow: number };
}
export interface Assumptions {
  productionWriteMs: number;
  utilization: number;
  writesPerFlush: number[];
  activeDevicesPerMesh: number;
  flushIntervalS: number;
  rowsPerMesh: number;
  databaseBytes: number;
  fill: number;
  shards: number[];
}
export interface ModelRow {
  shards: number;
  localFlushes: number[];
  productionFlushes: number[];
  activeMeshes: number;
  devicesEvery10s: number;
  storedMeshes: number;
  localWriteMs: number;
  bytesPerRow: number;
}
export declare const ASSUMPTIONS: Assumptions;
export declare function model(measured: Measured, assumptions?: Assumptions): ModelRow[];
export declare function renderModel(rows: ModelRow[]): string;
