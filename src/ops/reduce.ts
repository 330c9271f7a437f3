import * as core from "../core/reduce.ts";
import type { Tensor } from "../core/tensor.ts";
import { checkDTypeIn, checkTensor } from "./check.ts";
import { as } from "./kernels.ts";
import { readScalar, scalar } from "./scalar.ts";
import { tapeFor } from "./tape.ts";

/** Σ of all elements, as a scalar tensor of x's dtype. */
export function sum(x: Tensor): Tensor {
  return reduceAll("sum", x, 1);
}

/** Mean of all elements, as a scalar tensor of x's dtype (NaN for an empty x). */
export function mean(x: Tensor): Tensor {
  return reduceAll("mean", x, x?.size);
}

/** Σ x / n: the gradient is 1/n in every element. */
function reduceAll(op: string, x: Tensor, n: number): Tensor {
  checkTensor(op, "x", x);
  const dtype = checkDTypeIn(op, "x", x, ["f32", "f64"]);
  const out = scalar(core.sum(x) / n, dtype);
  const tape = tapeFor(x);
  if (tape) {
    tape.record(
      out,
      (g, sink) => {
        const dx = sink.buffer(x);
        if (!dx) return;
        const v = readScalar(g) / n;
        if (dx.accumulate) as()[`add_scalar_${dtype}`](dx.out.ptr, v, dx.out.ptr, x.size);
        else dx.out.data().fill(v);
      },
      [],
    );
  }
  return out;
}
