import { shapeStr, Tensor } from "../core/tensor.ts";
import { checkDTypeIn, checkInput } from "./check.ts";
import { as } from "./kernels.ts";
import { normAxis } from "./strided.ts";
import { tapeFor } from "./tape.ts";

/**
 * Index select along `axis` (numpy's take): out[..., j..., ...] = x[..., indices[j...], ...],
 * for i32 `indices` of any shape, each in [0, size of that axis); the result has shape
 * x.shape[:axis] + indices.shape + x.shape[axis+1:]. Any dtype of x. Gradient: g scatter-added
 * back (an index that repeats sums its gradients).
 */
export function gather(x: Tensor, indices: Tensor, axis = 0): Tensor {
  const op = "gather";
  checkInput(op, "x", x);
  checkInput(op, "indices", indices);
  checkDTypeIn(op, "indices", indices, ["i32"]);
  if (x.ndim === 0) throw new RangeError(`plait: ${op}: argument x is a scalar (shape []); gather needs an axis`);
  const k = normAxis(op, axis, x.shape);
  const dim = x.shape[k];
  const n = indices.size;
  const bad = n === 0 ? -1 : as().first_outside_i32(indices.ptr, n, dim);
  if (bad >= 0) {
    throw new RangeError(
      `plait: ${op}: argument indices has ${indices.data()[bad]} at flat index ${bad}, expected an index into axis ${k} of x ${shapeStr(x.shape)} in [0, ${dim})`,
    );
  }
  const outer = x.shape.slice(0, k).reduce((a, b) => a * b, 1);
  const inner = x.shape.slice(k + 1).reduce((a, b) => a * b, 1);
  const out = new Tensor([...x.shape.slice(0, k), ...indices.shape, ...x.shape.slice(k + 1)], x.dtype);
  const ids = indices.data();
  const xs = x.data();
  const ys = out.data();
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < n; j++) {
      const src = (o * dim + ids[j]) * inner;
      ys.set(xs.subarray(src, src + inner), (o * n + j) * inner);
    }
  }
  const tape = tapeFor(x);
  if (tape) {
    tape.record(
      out,
      (g, sink) => {
        const dx = sink.buffer(x);
        if (!dx) return;
        const d = dx.out.data();
        if (!dx.accumulate) d.fill(0);
        const gs = g.data();
        const is = indices.data();
        for (let o = 0; o < outer; o++) {
          for (let j = 0; j < n; j++) {
            const dst = (o * dim + is[j]) * inner;
            const src = (o * n + j) * inner;
            for (let c = 0; c < inner; c++) d[dst + c] += gs[src + c];
          }
        }
      },
      [indices],
    );
  }
  return out;
}
