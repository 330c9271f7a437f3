import * as gemm from "../core/gemm.ts";
import type { Tensor } from "../core/tensor.ts";
import { colSums } from "./broadcast.ts";
import { checkTensor } from "./check.ts";
import { tapeFor } from "./tape.ts";

export interface MatmulOptions {
  /** Use aᵀ instead of a. */
  transA?: boolean;
  /** Use bᵀ instead of b. */
  transB?: boolean;
  /** A row [n] added to every row of the product. */
  bias?: Tensor;
}

/**
 * C = op(a) · op(b) (+ bias), op(x) = xᵀ where asked. For G = dL/dC:
 *   d op(a) = G · op(b)ᵀ,  d op(b) = op(a)ᵀ · G,  d bias = column sums of G,
 * each computed by the GEMM with the transposes folded into its layout flags and added into
 * the gradient buffer in place (the GEMM's accumulate mode) when one already exists.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  checkTensor("matmul", "a", a);
  checkTensor("matmul", "b", b);
  const { transA = false, transB = false, bias } = opts;
  if (bias !== undefined) checkTensor("matmul", "bias", bias);
  const out = gemm.matmul(a, b, { transA, transB, bias });
  const tape = tapeFor(a, b, bias);
  if (tape) {
    if (a.dtype !== "f32" && a.dtype !== "f64") {
      throw new TypeError(`plait: matmul: gradients need f32 or f64 operands, got ${a.dtype} (cast to f32 first)`);
    }
    tape.record(
      out,
      (g, sink) => {
        const da = sink.buffer(a);
        if (da) {
          const acc = { out: da.out, accumulate: da.accumulate };
          if (!transA) gemm.matmul(g, b, { transB: !transB, ...acc });
          else gemm.matmul(b, g, { transA: transB, transB: true, ...acc });
        }
        const db = sink.buffer(b);
        if (db) {
          const acc = { out: db.out, accumulate: db.accumulate };
          if (!transB) gemm.matmul(a, g, { transA: !transA, ...acc });
          else gemm.matmul(g, a, { transA: true, transB: transA, ...acc });
        }
        if (bias) {
          const dbias = sink.buffer(bias);
          if (dbias) colSums(g, dbias.out, g.shape[0], g.shape[1], dbias.accumulate);
        }
      },
      [a, b],
    );
  }
  return out;
}

/** A dense layer: x · w + b, for x [batch, in], w [in, out], b [out] (one fused GEMM call). */
export function linear(x: Tensor, w: Tensor, b?: Tensor): Tensor {
  return matmul(x, w, { bias: b });
}
