// The D1 bindings of one environment of a wrangler.toml, so `npm run dev` can apply the migrations
// to every database that environment binds (DB and the index shards INDEX_DB_0..N-1), not only DB.
// No TOML parser ships in node_modules (wrangler has one, but its internals are not an API), so this
// is a small reader for exactly what it needs: `[[d1_databases]]` / `[[env.NAME.d1_databases]]`
// array tables whose keys are plain `key = "string"` lines. Anything in those tables it does not
// understand, and a d1_databases written in a form it cannot read (inline), is an error rather than
// a silently missed database: a database without migrations would only fail later, at a query.

export class BindingsError extends Error {}

const HEADER = /^\[\[?\s*([A-Za-z0-9_."-]+?)\s*\]\]?$/;
const STRING_PAIR = /^([A-Za-z0-9_-]+)\s*=\s*"([^"\\]*)"$/;

/** A line without its trailing comment; `#` inside a basic string is kept. */
function withoutComment(line) {
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"' && line[i - 1] !== "\\") quoted = !quoted;
    else if (c === "#" && !quoted) return line.slice(0, i);
  }
  return line;
}

/**
 * `[{ binding, databaseName, databaseId, migrationsDir }]` of the top level (env undefined) or of
 * `[env.<env>]`, in file order. Throws BindingsError for a table it cannot read.
 */
export function d1BindingsOf(text, env) {
  if (env !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(env)) throw new BindingsError(`not an environment name: ${JSON.stringify(env)}`);
  const wanted = env === undefined ? "d1_databases" : `env.${env}.d1_databases`;
  const found = [];
  /** The table the current line belongs to: "" for the top level. */
  let table = "";
  let current = null;
  const lines = text.split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    const line = withoutComment(lines[n]).trim();
    if (line === "") continue;
    const where = `line ${n + 1}`;
    if (line.startsWith("[") && !line.includes("=")) {
      const header = HEADER.exec(line);
      const array = line.startsWith("[[");
      if (!header || array !== line.endsWith("]]")) throw new BindingsError(`${where}: cannot read the table header ${line}`);
      table = header[1];
      current = null;
      if (array && table === wanted) {
        current = { line: n + 1, values: {} };
        found.push(current);
      }
      continue;
    }
    // `d1_databases = [...]` or `env.NAME.d1_databases = ...` would bind databases this reader misses.
    const key = line.split("=")[0]?.trim() ?? "";
    const fullKey = table === "" ? key : `${table}.${key}`;
    if (fullKey.replace(/\s+/g, "") === wanted) {
      throw new BindingsError(`${where}: d1_databases must be written as [[${wanted}]] tables for this reader`);
    }
    if (current === null) continue;
    const pair = STRING_PAIR.exec(line);
    if (!pair) throw new BindingsError(`${where}: expected key = "string" in [[${wanted}]], got ${line}`);
    const [, name, value] = pair;
    if (name in current.values) throw new BindingsError(`${where}: ${name} given twice in one [[${wanted}]]`);
    current.values[name] = value;
  }
  const bindings = found.map(({ line, values }) => {
    if (!values.binding) throw new BindingsError(`[[${wanted}]] at line ${line} has no binding`);
    return {
      binding: values.binding,
      databaseName: values.database_name,
      databaseId: values.database_id,
      // wrangler's default when the key is absent.
      migrationsDir: values.migrations_dir ?? "migrations",
    };
  });
  const names = bindings.map((b) => b.binding);
  const twice = names.find((b, i) => names.indexOf(b) !== i);
  if (twice !== undefined) throw new BindingsError(`binding ${twice} appears twice in [[${wanted}]]`);
  return bindings;
}
