/** A command-line flag: its name (without --), what it holds, its default and a line of help. */
export interface FlagSpec {
  type: "int" | "number" | "string" | "boolean";
  default?: number | string | boolean;
  help: string;
  /** For string flags: the accepted values. */
  choices?: readonly string[];
  /** For numeric flags: the smallest accepted value. */
  min?: number;
}

export type Flags<S extends Record<string, FlagSpec>> = {
  [K in keyof S]: S[K]["type"] extends "boolean"
    ? boolean
    : S[K]["type"] extends "string"
      ? string | undefined
      : number | undefined;
};

/**
 * Parses `--name value`, `--name=value` and `--flag` against `spec`. Unknown flags, missing
 * values, values of the wrong type or outside `choices`/`min` throw an error naming the flag,
 * what it accepts and what came.
 */
export function parseFlags<S extends Record<string, FlagSpec>>(argv: readonly string[], spec: S): Flags<S> {
  const out: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(spec)) out[name] = s.type === "boolean" ? (s.default ?? false) : s.default;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) throw new Error(`unexpected argument ${JSON.stringify(arg)}; flags start with --`);
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const s = spec[name];
    if (!s)
      throw new Error(
        `unknown flag --${name}; known flags: ${Object.keys(spec)
          .map((k) => `--${k}`)
          .join(", ")}`,
      );
    if (s.type === "boolean") {
      if (eq >= 0) throw new Error(`flag --${name} takes no value`);
      out[name] = true;
      continue;
    }
    const raw = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (raw === undefined) throw new Error(`flag --${name} needs a value (${describe(s)})`);
    out[name] = convert(name, raw, s);
  }
  return out as Flags<S>;
}

function convert(name: string, raw: string, s: FlagSpec): number | string {
  if (s.type === "string") {
    if (s.choices && !s.choices.includes(raw)) {
      throw new Error(`flag --${name} must be one of ${s.choices.join(", ")}; got ${JSON.stringify(raw)}`);
    }
    return raw;
  }
  const v = Number(raw);
  const ok = raw.trim() !== "" && Number.isFinite(v) && (s.type === "number" || Number.isInteger(v));
  if (!ok || (s.min !== undefined && v < s.min)) {
    throw new Error(`flag --${name} must be ${describe(s)}; got ${JSON.stringify(raw)}`);
  }
  return v;
}

function describe(s: FlagSpec): string {
  const kind = s.type === "int" ? "an integer" : s.type === "number" ? "a number" : "a string";
  return s.min === undefined ? kind : `${kind} ≥ ${s.min}`;
}

/** The help text for a command's flags. */
export function flagHelp(spec: Record<string, FlagSpec>): string {
  return Object.entries(spec)
    .map(([name, s]) => {
      const def = s.default === undefined ? "" : ` (default: ${s.default})`;
      const choices = s.choices ? ` [${s.choices.join("|")}]` : "";
      return `  --${name}${choices}  ${s.help}${def}`;
    })
    .join("\n");
}
