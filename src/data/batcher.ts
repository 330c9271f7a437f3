import { checkOptions } from "../core/options.ts";
import { Rng } from "./rng.ts";

export interface BatcherOptions {
  batchSize: number;
  /** Reorder the samples every epoch (default true); otherwise they come in index order. */
  shuffle?: boolean;
  /** Seed of the shuffle (a non-negative safe integer, default 0); the epoch picks the stream. */
  seed?: number;
  /**
   * Drop the tail that does not divide evenly (default false): first the samples past the
   * last multiple of worldSize, then each rank's last partial batch. Without it, the sample
   * order is padded with its own start up to a multiple of worldSize, and the last batch
   * may be short.
   */
  dropLast?: boolean;
  rank?: number;
  worldSize?: number;
}

const BATCHER_OPTIONS = ["batchSize", "shuffle", "seed", "dropLast", "rank", "worldSize"] as const;

/**
 * Index batches of a dataset of `n` samples for one rank, sharded as torch's
 * DistributedSampler does: one permutation per epoch (the same on every rank), padded or cut
 * to a multiple of worldSize, and rank r takes positions r, r + W, r + 2W, ... Every rank
 * gets the same number of samples and batches. Integer arithmetic only, so every runtime
 * produces the same batches.
 */
export class Batcher {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly rank: number;
  readonly worldSize: number;
  /** Samples each rank sees per epoch. */
  readonly samplesPerRank: number;
  /** Batches each rank gets per epoch. */
  readonly batchesPerEpoch: number;

  constructor(
    readonly n: number,
    options: BatcherOptions,
  ) {
    const opts = checkOptions("Batcher", options, BATCHER_OPTIONS);
    checkInt(n, 0, 2 ** 31 - 1, "n");
    this.batchSize = checkInt(opts.batchSize, 1, 2 ** 31 - 1, "batchSize");
    this.worldSize = checkInt(opts.worldSize ?? 1, 1, 2 ** 31 - 1, "worldSize");
    this.rank = checkInt(opts.rank ?? 0, 0, this.worldSize - 1, "rank");
    this.seed = checkInt(opts.seed ?? 0, 0, Number.MAX_SAFE_INTEGER, "seed");
    this.shuffle = checkBool(opts.shuffle ?? true, "shuffle");
    this.dropLast = checkBool(opts.dropLast ?? false, "dropLast");
    const perRank = n / this.worldSize;
    this.samplesPerRank = this.dropLast ? Math.floor(perRank) : Math.ceil(perRank);
    const batches = this.samplesPerRank / this.batchSize;
    this.batchesPerEpoch = this.dropLast ? Math.floor(batches) : Math.ceil(batches);
  }

  /** The order of all n samples in `epoch`, before sharding (identical on every rank). */
  order(epoch = 0): Int32Array {
    checkInt(epoch, 0, Number.MAX_SAFE_INTEGER, "epoch");
    if (this.shuffle) return new Rng(this.seed, epoch).permutation(this.n);
    const identity = new Int32Array(this.n);
    for (let i = 0; i < identity.length; i++) identity[i] = i;
    return identity;
  }

  /** This rank's samples of `epoch`, in the order they are batched. */
  indices(epoch = 0): Int32Array {
    const perm = this.order(epoch);
    const mine = new Int32Array(this.samplesPerRank);
    // Position p of the padded order is perm[p mod n]: padding repeats the order from its start.
    for (let k = 0; k < mine.length; k++) mine[k] = perm[(this.rank + k * this.worldSize) % this.n];
    return mine;
  }

  /** This rank's batches of `epoch`: views into one `indices(epoch)` array. */
  batches(epoch = 0): Int32Array[] {
    const mine = this.indices(epoch);
    const out: Int32Array[] = [];
    for (let b = 0; b < this.batchesPerEpoch; b++) {
      out.push(mine.subarray(b * this.batchSize, Math.min((b + 1) * this.batchSize, mine.length)));
    }
    return out;
  }
}

function checkInt(value: unknown, lo: number, hi: number, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < lo || value > hi) {
    throw new RangeError(`plait: Batcher: ${what} must be an integer in [${lo}, ${hi}], got ${String(value)}`);
  }
  return value;
}

function checkBool(value: unknown, what: string): boolean {
  if (typeof value !== "boolean")
    throw new TypeError(`plait: Batcher: ${what} must be true or false, got ${String(value)}`);
  return value;
}
