import { blasFor } from "../../ffi/blas.ts";
import { type HalfDType, isHalf, roundThrough, toDType } from "../core/castInto.ts";
import { anyCuda, type CudaTensor } from "../core/device.ts";
import * as gemm from "../core/gemm.ts";
import type { Tensor } from "../core/tensor.ts";
import { bmm } from "./bmm.ts";
import { colSums } from "./broadcast.ts";
import { checkInput } from "./check.ts";
import { type DeviceMatmulOptions, deviceMatmul } from "./cuda.ts";
import { type GradSink, tapeFor } from "./tape.ts";

export interface MatmulOptions {
  /** Use aᵀ instead of a. */
  transA?: boolean;
  /** Use bᵀ instead of b. */
  transB?: boolean;
  /** A row [n] added to every row of the product. */
  bias?: Tensor;
}

/**
 * C = op(a) · op(b) (+ bias), op(x) = xᵀ where asked. An operand with more than 2 axes makes it
 * the batched product `bmm` (bmm.ts: [...batch, m, k] × [...batch, k, n], or a 2-D operand
 * shared over the batch). For G = dL/dC:
 *   d op(a) = G · op(b)ᵀ,  d op(b) = op(a)ᵀ · G,  d bias = column sums of G,
 * each computed by the GEMM with the transposes folded into its layout flags and added into
 * the gradient buffer in place (the GEMM's accumulate mode) when one already exists.
 *
 * f32 and f64 products run on the system BLAS when one is in use (configure({ blas }) /
 * PLAIT_BLAS, ffi/blas.ts), else on the WASM kernels (core.matmul): same contract, same bound.
 *
 * Half precision: when an operand is f16 or bf16 (a half compute copy of a weight), the product
 * runs in that dtype: an f32 operand is rounded to it at the input, the GEMM multiplies the half
 * values with f32 accumulation, and C is f32; a half bias is widened (exactly). The backward
 * rounds G to the half dtype (where an f16 overflow turns into inf: what a loss scaler
 * watches for) and writes the f32 gradients of both operands, half ones included.
 */
export function matmul(a: Tensor, b: Tensor, opts?: MatmulOptions): Tensor;
/** On a CUDA device (every argument a CudaTensor on one device): cuBLAS, f32 result, no backward yet. */
export function matmul(a: CudaTensor, b: CudaTensor, opts?: DeviceMatmulOptions): CudaTensor;
export function matmul(
  a: Tensor | CudaTensor,
  b: Tensor | CudaTensor,
  opts: MatmulOptions | DeviceMatmulOptions = {},
): Tensor | CudaTensor {
  if (anyCuda([a, b, opts?.bias])) return deviceMatmul(a, b, opts);
  return cpuMatmul(a as Tensor, b as Tensor, opts as MatmulOptions);
}

function cpuMatmul(a: Tensor, b: Tensor, opts: MatmulOptions): Tensor {
  checkInput("matmul", "a", a);
  checkInput("matmul", "b", b);
  const { transA = false, transB = false, bias } = opts;
  if (bias !== undefined) checkInput("matmul", "bias", bias);
  if (a.ndim > 2 || b.ndim > 2) {
    if (bias !== undefined)
      throw new RangeError("plait: matmul: option bias is for 2-D products; add it after a batched one");
    return bmm(a, b, { transA, transB });
  }
  const half = halfOperands(a, b);
  if (half !== undefined) return halfMatmul(a, b, transA, transB, bias, half);
  const out = product(a, b, { transA, transB, bias });
  const tape = tapeFor(a, b, bias);
  if (tape) {
    tape.record(out, (g, sink) => backward(g, g, a, b, a, b, transA, transB, bias, sink), [a, b]);
  }
  return out;
}

/**
 * One GEMM: the system BLAS for f32/f64 when in use, else the WASM kernels. Half operands on
 * the BLAS are widened to f32 first: exact (every half value is an f32 value, and a product of
 * two halves fits f32's mantissa), so the BLAS computes what the WASM half kernel does, f32
 * accumulation of the same products, only in another order.
 */
export function product(a: Tensor, b: Tensor, opts: gemm.GemmOptions): Tensor {
  if (!isHalf(a.dtype) && !isHalf(b.dtype)) return (blasFor(a.dtype) ?? gemm.matmul)(a, b, opts);
  const blas = blasFor("f32");
  if (blas === undefined) return gemm.matmul(a, b, opts);
  const a32 = toDType(a, "f32");
  const b32 = toDType(b, "f32");
  try {
    return blas(a32, b32, opts);
  } finally {
    if (a32 !== a) a32.dispose();
    if (b32 !== b) b32.dispose();
  }
}

/** A dense layer: x · w + b, for x [batch, in], w [in, out], b [out] (one fused GEMM call). */
export function linear(x: Tensor, w: Tensor, b?: Tensor): Tensor {
  return matmul(x, w, { bias: b });
}

/** The half dtype the product runs in, if an operand has one; undefined for f32/f64 pairs. */
function halfOperands(a: Tensor, b: Tensor): HalfDType | undefined {
  const half = isHalf(a.dtype) ? a.dtype : isHalf(b.dtype) ? b.dtype : undefined;
  if (half === undefined) return undefined;
  for (const [arg, x] of [
    ["a", a],
    ["b", b],
  ] as const) {
    if (x.dtype !== half && x.dtype !== "f32") {
      throw new TypeError(
        `plait: matmul: argument ${arg} has dtype ${x.dtype}; with a ${half} operand the other must be ${half} or f32 (rounded to ${half})`,
      );
    }
  }
  return half;
}

function halfMatmul(
  a: Tensor,
  b: Tensor,
  transA: boolean,
  transB: boolean,
  bias: Tensor | undefined,
  half: HalfDType,
): Tensor {
  // The operands the product runs on, kept for the backward when recording, else freed here:
  // for the WASM GEMM, half (an f32 operand rounded to it; the packing widens); for the BLAS,
  // f32 holding the half values (an f32 operand, or a HalfCopy not cast yet from its master,
  // rounded through the half dtype in one pass; a half one widened once), not half copies that
  // each product would widen again.
  const onBlas = blasFor("f32") !== undefined;
  const operand = (x: Tensor) => (onBlas ? roundThrough(x, half) : toDType(x, half));
  const ah = operand(a);
  const bh = operand(b);
  const made: Tensor[] = [];
  if (ah !== a) made.push(ah);
  if (bh !== b) made.push(bh);
  const bias32 = bias !== undefined && isHalf(bias.dtype) ? toDType(bias, "f32") : bias;
  let out: Tensor;
  try {
    out = product(ah, bh, { transA, transB, bias: bias32 });
  } finally {
    if (bias32 !== bias) bias32?.dispose();
  }
  // The backward reads op(b) only for a's gradient and op(a) only for b's: an operand made here
  // that no gradient needs (the weight's f32 copy when the input is the batch) is freed now.
  const tape = tapeFor(a, b, bias);
  const saves = [tape?.tracks(b) ? ah : undefined, tape?.tracks(a) ? bh : undefined].filter(
    (t): t is Tensor => t !== undefined,
  );
  for (const t of made) if (!saves.includes(t)) t.dispose();
  if (!tape) return out;
  tape.record(
    out,
    (g, sink) => {
      const gh = onBlas ? roundThrough(g, half) : toDType(g, half);
      try {
        backward(g, gh, a, b, ah, bh, transA, transB, bias, sink);
      } finally {
        gh.dispose();
      }
    },
    saves,
    made.filter((t) => saves.includes(t)),
  );
  return out;
}

/**
 * The reverse step: `g` is dL/dC (for the bias), `gOp` the same in the operands' dtype, `aOp`
 * and `bOp` the operands the product ran on (a and b, or their half copies); the gradients
 * go to a, b and bias.
 */
function backward(
  g: Tensor,
  gOp: Tensor,
  a: Tensor,
  b: Tensor,
  aOp: Tensor,
  bOp: Tensor,
  transA: boolean,
  transB: boolean,
  bias: Tensor | undefined,
  sink: GradSink,
): void {
  const da = sink.buffer(a);
  if (da) {
    const acc = { out: da.out, accumulate: da.accumulate };
    if (!transA) product(gOp, bOp, { transB: !transB, ...acc });
    else product(bOp, gOp, { transA: transB, transB: true, ...acc });
  }
  const db = sink.buffer(b);
  if (db) {
    const acc = { out: db.out, accumulate: db.accumulate };
    if (!transB) product(aOp, gOp, { transA: !transA, ...acc });
    else product(gOp, aOp, { transA: true, transB: transA, ...acc });
  }
  if (bias) {
    const dbias = sink.buffer(bias);
    if (dbias) colSums(g, dbias.out, g.shape[0], g.shape[1], dbias.accumulate);
  }
}
