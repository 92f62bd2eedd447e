// Plain-text output of the CLI: aligned tables and "key  value" records.

function cell(value) {
  if (value === null || value === undefined) return "-";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export function printJson(io, value) {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printTable(io, rows, columns) {
  if (rows.length === 0) {
    io.stdout.write("(none)\n");
    return;
  }
  const cells = rows.map((row) => columns.map((c) => cell(row[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const line = (values) => values.map((v, i) => v.padEnd(widths[i])).join("  ").trimEnd();
  const out = [line(columns), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)];
  io.stdout.write(`${out.join("\n")}\n`);
}

/** One object as aligned "key  value" lines; nested objects are flattened with dots. */
export function printRecord(io, record) {
  const entries = [];
  const walk = (value, path) => {
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) walk(v, path === "" ? k : `${path}.${k}`);
    } else {
      entries.push([path, Array.isArray(value) ? value.map(cell).join(", ") || "-" : cell(value)]);
    }
  };
  walk(record, "");
  const width = Math.max(0, ...entries.map(([k]) => k.length));
  io.stdout.write(entries.map(([k, v]) => `${k.padEnd(width)}  ${v}\n`).join(""));
}
