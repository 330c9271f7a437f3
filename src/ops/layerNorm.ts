import { shapeStr, Tensor } from "../core/tensor.ts";
import { asMatrix, checkDTypeIn, checkInput, checkSameDType } from "./check.ts";
import { as } from "./kernels.ts";
import { type GradBuffer, tapeFor } from "./tape.ts";

/**
 * Layer normalisation over the last axis: (x − mean) / √(var + eps) · gamma + beta, with the
 * biased variance (as torch.nn.LayerNorm). gamma and beta have shape [features].
 */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-5): Tensor {
  const op = "layerNorm";
  checkInput(op, "x", x);
  checkInput(op, "gamma", gamma);
  checkInput(op, "beta", beta);
  const dtype = checkDTypeIn(op, "x", x, ["f32", "f64"]);
  checkSameDType(op, "gamma", gamma, "x", x);
  checkSameDType(op, "beta", beta, "x", x);
  if (x.ndim === 0) throw new RangeError(`plait: ${op}: argument x must have at least 1 dimension, got shape []`);
  const [rows, cols] = asMatrix(x);
  for (const [name, p] of [
    ["gamma", gamma],
    ["beta", beta],
  ] as const) {
    if (p.ndim !== 1 || p.shape[0] !== cols) {
      throw new RangeError(
        `plait: ${op}: argument ${name} has shape ${shapeStr(p.shape)}, expected [${cols}] (the last axis of x ${shapeStr(x.shape)})`,
      );
    }
  }
  if (!(typeof eps === "number" && eps >= 0 && Number.isFinite(eps))) {
    throw new RangeError(`plait: ${op}: argument eps must be a finite number ≥ 0, got ${eps}`);
  }
  const k = as();
  const out = new Tensor(x.shape, dtype);
  const tape = tapeFor(x, gamma, beta);
  const mean = tape ? new Tensor([rows], dtype) : undefined;
  const rstd = tape ? new Tensor([rows], dtype) : undefined;
  const fwd = dtype === "f32" ? k.layer_norm_f32 : k.layer_norm_f64;
  fwd(x.ptr, gamma.ptr, beta.ptr, out.ptr, mean?.ptr ?? 0, rstd?.ptr ?? 0, rows, cols, eps);
  if (tape && mean && rstd) {
    const bwd = dtype === "f32" ? k.layer_norm_backward_f32 : k.layer_norm_backward_f64;
    tape.record(
      out,
      (g, sink) => {
        const dx = sink.buffer(x);
        const dgamma = sink.buffer(gamma);
        const dbeta = sink.buffer(beta);
        // The kernel adds into dγ and dβ, so fresh buffers start at zero.
        if (dgamma && !dgamma.accumulate) dgamma.out.data().fill(0);
        if (dbeta && !dbeta.accumulate) dbeta.out.data().fill(0);
        const ptr = (b: GradBuffer | null) => b?.out.ptr ?? 0;
        bwd(
          x.ptr,
          gamma.ptr,
          mean.ptr,
          rstd.ptr,
          g.ptr,
          ptr(dx),
          ptr(dgamma),
          ptr(dbeta),
          rows,
          cols,
          dx?.accumulate ? 1 : 0,
        );
      },
      [x, gamma, mean, rstd],
      [mean, rstd],
    );
  }
  return out;
}
