// Flag parsing for every CLI group: node:util parseArgs in strict mode, so an unknown flag, a
// misspelt one (--acess), an extra word or a value outside an enumeration is a usage error (exit
// 2) and never a silently different command. Also the one place that turns errors into exit codes.
import { parseArgs } from "node:util";

/** A mistake in how the CLI was called: printed with the usage, exit 2. */
export class UsageError extends Error {}

/** The server refused or could not be reached (see admin-client.mjs): one line, exit 1. */
export class CommandError extends Error {}

/** "usage: a\n       b" from usage lines. */
export function formatUsage(usage) {
  const lines = usage.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  return `usage: ${lines.join("\n       ")}`;
}

/**
 * Parses the words after a command name.
 * spec: { options: parseArgs options, positionals: ["<mesh>"] (required, in order),
 *         enums: { flag: ["a", "b"] }, required: ["flag"] }
 * Every command also takes --help and --json.
 */
export function parseCommand(argv, spec = {}) {
  const options = { help: { type: "boolean", short: "h" }, json: { type: "boolean" }, ...(spec.options ?? {}) };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    // parseArgs' messages are clear but long ("Unknown option '--acess'. To specify a positional
    // argument starting with a '-', place it at the end of the command after '--', as in '-- "--acess"'").
    const first = String(err.message).split(". ")[0].replace(/\.$/, "");
    throw new UsageError(first);
  }
  const { values, positionals } = parsed;
  if (values.help) return { help: true, values, positionals };
  const names = spec.positionals ?? [];
  if (positionals.length < names.length) throw new UsageError(`missing ${names[positionals.length]}`);
  if (positionals.length > names.length) {
    throw new UsageError(`unexpected ${positionals.length - names.length === 1 ? "word" : "words"}: ${positionals.slice(names.length).join(" ")}`);
  }
  for (const flag of spec.required ?? []) {
    if (values[flag] === undefined || values[flag] === "") throw new UsageError(`missing --${flag}`);
  }
  for (const [flag, allowed] of Object.entries(spec.enums ?? {})) {
    if (values[flag] !== undefined && !allowed.includes(values[flag])) {
      throw new UsageError(`--${flag} must be one of ${allowed.join(", ")} (got ${JSON.stringify(values[flag])})`);
    }
  }
  return { help: false, values, positionals };
}

/** A positive integer flag value, or undefined when absent. */
export function positiveInt(value, flag, max = Number.MAX_SAFE_INTEGER) {
  if (value === undefined) return undefined;
  if (!/^\d{1,9}$/.test(value) || Number(value) < 1 || Number(value) > max) {
    throw new UsageError(`--${flag} must be an integer from 1 to ${max}`);
  }
  return Number(value);
}

/** Prints an error the way the CLI does and answers its exit code. */
export function reportError(err, usage, io) {
  if (err instanceof UsageError) {
    io.stderr.write(`meshbox: ${err.message}\n\n${formatUsage(usage)}\n`);
    return 2;
  }
  io.stderr.write(`meshbox: ${err?.message ?? err}\n`);
  return 1;
}

/**
 * Runs one command of a group: `commands` maps a command name to
 * `{ spec, run(parsed, io) → exit code | undefined }`, or `{ raw: true, run(words, io) }` for a
 * command that parses its own words. Resolves to the exit code, never rejects.
 */
export async function runGroup(group, commands, usage, argv, io) {
  let shown = usage;
  try {
    const [name, ...rest] = argv;
    if (name === undefined) throw new UsageError(`${group}: which command?`);
    if (name === "--help" || name === "-h" || name === "help") {
      io.stdout.write(`${formatUsage(usage)}\n`);
      return 0;
    }
    const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
    if (command === undefined) throw new UsageError(`unknown command "${group} ${name}"`);
    // A mistake in one command shows that command's usage line, not the whole group's.
    const own = usage.split("\n").filter((l) => l.trim().startsWith(`meshbox ${group} ${name}`));
    if (own.length > 0) shown = own.join("\n");
    // A command that parses its own words (one delegated to another module).
    if (command.raw) return (await command.run(rest, io)) ?? 0;
    const parsed = parseCommand(rest, command.spec);
    if (parsed.help) {
      io.stdout.write(`${formatUsage(usage)}\n`);
      return 0;
    }
    return (await command.run(parsed, io)) ?? 0;
  } catch (err) {
    return reportError(err, shown, io);
  }
}
