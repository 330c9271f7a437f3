import { bytesOf } from "../core/dtype.ts";
import { parallelFor } from "../core/parallel.ts";
import { Tensor } from "../core/tensor.ts";
import { checkDTypeIn, checkInput } from "./check.ts";
import { tapeFor } from "./tape.ts";

/** A source of uniform numbers in [0, 1) (the seeded Rng of src/data/rng.ts fits). */
export interface UniformSource {
  uniform(): number;
}

/**
 * Inverted dropout: each element is zeroed with probability `p` and the rest multiplied by
 * 1/(1 − p), so the expectation is unchanged. The mask is a hash of (a seed drawn from `rng`,
 * element index): the same rng state gives the same mask, and the backward pass recomputes
 * it instead of storing it.
 */
export function dropout(x: Tensor, p: number, rng: UniformSource): Tensor {
  const op = "dropout";
  checkInput(op, "x", x);
  const dtype = checkDTypeIn(op, "x", x, ["f32", "f64"]);
  if (!(typeof p === "number" && p >= 0 && p < 1)) {
    throw new RangeError(`plait: ${op}: argument p must be a probability in [0, 1), got ${p}`);
  }
  if (typeof rng?.uniform !== "function") {
    throw new TypeError(`plait: ${op}: argument rng must have a uniform() method (e.g. new Rng(seed))`);
  }
  const seed = Math.floor(rng.uniform() * 2 ** 32) >>> 0;
  const threshold = Math.min(Math.round(p * 2 ** 32), 2 ** 32 - 1);
  const scale = 1 / (1 - p);
  const fn = `as.dropout_${dtype}`;
  const bytes = bytesOf(dtype);
  const apply = (src: Tensor, dst: Tensor) => {
    const s = src.ptr;
    const d = dst.ptr;
    parallelFor(fn, src.size, (i, n) => [s + i * bytes, d + i * bytes, n, i, seed, threshold, scale]);
  };
  const out = new Tensor(x.shape, dtype);
  apply(x, out);
  const tape = tapeFor(x);
  if (tape) tape.record(out, (g, sink) => sink.assign(x, (dx) => apply(g, dx)), []);
  return out;
}
