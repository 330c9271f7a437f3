import { checkOptions } from "../core/options.ts";
import { runtime } from "../core/runtime.ts";
import { type Shape, shapeStr, Tensor } from "../core/tensor.ts";
import { Batcher, type BatcherOptions } from "./batcher.ts";

/**
 * A map-style dataset (torch.utils.data.Dataset): `length` samples, sample `i` from `get(i)`.
 * A sample is anything the loader's collate function takes; the default collate stacks
 * tensors, typed arrays and numbers, also inside arrays and plain objects ({ x, y }).
 */
export interface Dataset<T> {
  readonly length: number;
  get(i: number): T;
}

/** A dataset over samples held in an array. */
export function arrayDataset<T>(items: readonly T[]): Dataset<T> {
  if (!Array.isArray(items)) throw new TypeError("plait: arrayDataset: argument items must be an array");
  return { length: items.length, get: (i) => items[i] };
}

/** What the default collate makes of a sample type: every leaf becomes a tensor one axis longer. */
export type Collated<T> = T extends Tensor | number | ArrayBufferView
  ? Tensor
  : T extends readonly unknown[]
    ? { -readonly [K in keyof T]: Collated<T[K]> }
    : T extends object
      ? { -readonly [K in keyof T]: Collated<T[K]> }
      : never;

/**
 * torch's default_collate for plait's values: the samples' leaves, matched by key (plain objects)
 * or position (arrays), are stacked on a new leading axis. A tensor leaf of shape S gives
 * [n, ...S] of its dtype; a Float32Array / Float64Array / Int32Array / Uint8Array leaf of length
 * L gives [n, L] of f32 / f64 / i32 / u8; number leaves give [n]: i32 when every one of them is
 * an integer (class labels), else f32. Leaves that differ in shape, dtype or kind are an error
 * naming the sample and the path.
 */
export function defaultCollate<T>(samples: readonly T[]): Collated<T> {
  if (samples.length === 0) throw new RangeError("plait: defaultCollate: no samples to collate");
  return collateAt(samples as readonly unknown[], "sample") as Collated<T>;
}

function collateAt(xs: readonly unknown[], path: string): unknown {
  const first = xs[0];
  const mismatch = (i: number, what: string) =>
    new TypeError(`plait: defaultCollate: ${path} of sample ${i} is ${what}, but of sample 0 ${kindOf(first)}`);
  if (first instanceof Tensor) {
    xs.forEach((x, i) => {
      if (!(x instanceof Tensor) || x.dtype !== first.dtype || shapeStr(x.shape) !== shapeStr(first.shape)) {
        throw mismatch(i, kindOf(x));
      }
    });
    return stackBytes(xs as Tensor[], first.shape, first.dtype, (t) => bytesOf(t));
  }
  if (typeof first === "number") {
    xs.forEach((x, i) => {
      if (typeof x !== "number") throw mismatch(i, kindOf(x));
    });
    const nums = xs as number[];
    const dtype = nums.every(Number.isInteger) && nums.every((v) => Math.abs(v) < 2 ** 31) ? "i32" : "f32";
    const t = new Tensor([nums.length], dtype);
    t.data().set(nums);
    return t;
  }
  if (ArrayBuffer.isView(first)) {
    const dtype = typedDType(first);
    if (dtype === undefined) {
      throw new TypeError(
        `plait: defaultCollate: ${path} is a ${first.constructor.name}; typed-array leaves must be Float32Array, Float64Array, Int32Array or Uint8Array`,
      );
    }
    const len = (first as unknown as ArrayLike<number>).length;
    xs.forEach((x, i) => {
      if (
        !ArrayBuffer.isView(x) ||
        x.constructor !== first.constructor ||
        (x as unknown as ArrayLike<number>).length !== len
      ) {
        throw mismatch(i, kindOf(x));
      }
    });
    const asBytes = (v: ArrayBufferView) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    return stackBytes(xs as ArrayBufferView[], [len], dtype, asBytes);
  }
  if (Array.isArray(first)) {
    xs.forEach((x, i) => {
      if (!Array.isArray(x) || x.length !== first.length) throw mismatch(i, kindOf(x));
    });
    return first.map((_, k) =>
      collateAt(
        xs.map((x) => (x as unknown[])[k]),
        `${path}[${k}]`,
      ),
    );
  }
  if (isPlainObject(first)) {
    const keys = Object.keys(first);
    xs.forEach((x, i) => {
      if (!isPlainObject(x) || Object.keys(x).sort().join() !== [...keys].sort().join()) throw mismatch(i, kindOf(x));
    });
    return Object.fromEntries(
      keys.map((k) => [
        k,
        collateAt(
          xs.map((x) => (x as Record<string, unknown>)[k]),
          `${path}.${k}`,
        ),
      ]),
    );
  }
  throw new TypeError(
    `plait: defaultCollate: ${path} is ${kindOf(first)}; the default collate stacks tensors, typed arrays and numbers (inside arrays and plain objects): pass a collate function for other samples`,
  );
}

function stackBytes<X>(xs: readonly X[], shape: Shape, dtype: Tensor["dtype"], bytes: (x: X) => Uint8Array): Tensor {
  const t = new Tensor([xs.length, ...shape], dtype);
  const out = new Uint8Array(runtime().memory.buffer, t.ptr, t.byteLength);
  const row = t.byteLength / Math.max(xs.length, 1);
  for (const [i, x] of xs.entries()) out.set(bytes(x), i * row);
  return t;
}

const bytesOf = (t: Tensor) => new Uint8Array(runtime().memory.buffer, t.ptr, t.byteLength);

function typedDType(v: ArrayBufferView): Tensor["dtype"] | undefined {
  if (v instanceof Float32Array) return "f32";
  if (v instanceof Float64Array) return "f64";
  if (v instanceof Int32Array) return "i32";
  if (v instanceof Uint8Array) return "u8";
  return undefined;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null &&
  typeof v === "object" &&
  (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null);

function kindOf(v: unknown): string {
  if (v instanceof Tensor) return `a tensor ${v.describe()}`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name} of length ${(v as unknown as ArrayLike<number>).length}`;
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (isPlainObject(v)) return `an object with keys [${Object.keys(v).join(", ")}]`;
  return v === null ? "null" : `${typeof v} ${String(v)}`;
}

/** One epoch's batches for one rank, in the form trainEpochs takes. */
export interface EpochBatches<B> {
  readonly count: number;
  /** Batch `i`, collated when asked for (inside the training step's scope, so its tensors are freed after it). */
  get(i: number): B;
  /** The samples in batch `i` on this rank. */
  size(batch: B, i: number): number;
}

export interface LoaderOptions<T, B> extends BatcherOptions {
  /** Turns a batch's samples into the batch the step takes; default `defaultCollate`. */
  collate?: (samples: T[]) => B;
}

const LOADER_OPTIONS = ["batchSize", "shuffle", "seed", "dropLast", "rank", "worldSize", "collate"] as const;

/**
 * Batches a dataset for one rank (torch's DataLoader with a DistributedSampler): the indices come
 * from a `Batcher` (one seeded permutation per epoch, the same on every rank; padded with its own
 * start or, with `dropLast`, cut to a multiple of worldSize; rank r takes every worldSize-th
 * position), and each batch's samples are fetched with `dataset.get` and collated.
 */
export class DataLoader<T, B = Collated<T>> {
  readonly batcher: Batcher;
  private readonly collate: (samples: T[]) => B;

  constructor(
    readonly dataset: Dataset<T>,
    options: LoaderOptions<T, B>,
  ) {
    const opts = checkOptions("loader", options, LOADER_OPTIONS);
    const n = dataset?.length;
    if (dataset === null || typeof dataset !== "object" || typeof dataset.get !== "function") {
      throw new TypeError("plait: loader: argument dataset must be a Dataset { length, get(i) }");
    }
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new RangeError(`plait: loader: dataset.length must be an integer ≥ 0, got ${String(n)}`);
    }
    if (n === 0)
      throw new RangeError("plait: loader: the dataset is empty (length 0); a loader needs at least one sample");
    if (opts.collate !== undefined && typeof opts.collate !== "function") {
      throw new TypeError("plait: loader: option collate must be a function (samples) => batch");
    }
    const { collate, ...batcherOptions } = opts;
    this.batcher = new Batcher(n, batcherOptions);
    if (this.batcher.batchesPerEpoch === 0) {
      throw new RangeError(
        `plait: loader: with dropLast, ${n} samples over ${this.batcher.worldSize} ranks in batches of ${this.batcher.batchSize} leave every rank no batch`,
      );
    }
    this.collate = collate ?? (defaultCollate as unknown as (samples: T[]) => B);
  }

  /** Batches each rank gets per epoch (the same on every rank). */
  get batchesPerEpoch(): number {
    return this.batcher.batchesPerEpoch;
  }

  /** This rank's batches of `epoch` (0-based, as Batcher and torch's sampler.set_epoch count). */
  epoch(epoch = 0): EpochBatches<B> {
    const order = this.batcher.batches(epoch);
    return {
      count: order.length,
      get: (i) => {
        if (!Number.isInteger(i) || i < 0 || i >= order.length) {
          throw new RangeError(`plait: loader: batch ${i} does not exist; epoch ${epoch} has ${order.length}`);
        }
        return this.collate(Array.from(order[i], (k) => this.dataset.get(k)));
      },
      size: (_b, i) => order[i]?.length ?? 0,
    };
  }
}

/** `new DataLoader(dataset, options)`. */
export function loader<T, B = Collated<T>>(dataset: Dataset<T>, options: LoaderOptions<T, B>): DataLoader<T, B> {
  return new DataLoader(dataset, options);
}
