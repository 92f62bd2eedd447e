// Order statistics and the one results table the benchmark prints.

/** Nearest-rank percentile of a list of numbers (p in 0..100). */
export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

export const median = (values) => percentile(values, 50);

/** Times one async call in milliseconds (high resolution). */
export async function timed(fn) {
  const start = performance.now();
  const value = await fn();
  return { ms: performance.now() - start, value };
}

/** Runs `fn(task)` over `tasks` with at most `limit` in flight. */
export async function pool(tasks, limit, fn) {
  const results = new Array(tasks.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, tasks.length) }, async () => {
    for (;;) {
      const i = next++;
      if (i >= tasks.length) return;
      results[i] = await fn(tasks[i], i);
    }
  });
  await Promise.all(workers);
  return results;
}

function fmt(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return "-";
  if (Math.abs(value) >= 1000) return value.toFixed(0);
  return value.toFixed(digits);
}

/**
 * Renders rows `{ name, median, p95, unit, runs, note }` as a fixed-width text table; rows that
 * compare with a floor also carry `floorName, floor, ratio, overhead, target, meets`.
 */
export function renderTable(rows) {
  const header = ["benchmark", "median", "p95", "unit", "runs", "floor", "floor ms", "ratio", "+ms", "target", "meets", "note"];
  const body = rows.map((r) => [
    r.name,
    fmt(r.median),
    fmt(r.p95),
    r.unit,
    String(r.runs),
    r.floorName ?? "",
    fmt(r.floor),
    r.ratio === undefined ? "-" : `${r.ratio.toFixed(2)}x`,
    fmt(r.overhead),
    r.target ?? "",
    r.meets === undefined ? "" : r.meets ? "yes" : "NO",
    r.note ?? "",
  ]);
  const right = new Set([1, 2, 4, 6, 7, 8]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells) => cells.map((c, i) => (right.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}
