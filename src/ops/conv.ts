import { type HalfDType, isHalf, toDType } from "../core/castInto.ts";
import { bytesOf } from "../core/dtype.ts";
import { shapeStr, Tensor } from "../core/tensor.ts";
import { colSums } from "./broadcast.ts";
import { checkInput } from "./check.ts";
import { col2im, type Geometry, geometryArgs, im2col, outSize, type Pair, pairOf } from "./im2col.ts";
import { as } from "./kernels.ts";
import { product } from "./linear.ts";
import { type GradSink, tapeFor } from "./tape.ts";

export interface Conv2dOptions {
  /** Step of the window: a number or [height, width]. Default 1. */
  stride?: Pair;
  /** Zeros added on each side: a number or [height, width]. Default 0. */
  padding?: Pair;
  /** Spacing of the kernel's taps: a number or [height, width]. Default 1. */
  dilation?: Pair;
}

const OP = "conv2d";

/**
 * 2-D convolution (cross-correlation, as torch.nn.functional.conv2d) of x [N, C, H, W] with
 * w [O, C, KH, KW], plus b [O] when given: out [N, O, OH, OW] with
 * OH = ⌊(H + 2·padding − dilation·(KH − 1) − 1) / stride⌋ + 1 (and OW alike).
 *
 * It runs as im2col (an AssemblyScript kernel for f32) and one GEMM: the columns [C·KH·KW, N·OH·OW] times the weight seen as
 * [O, C·KH·KW], the bias fused into the GEMM, so the system BLAS (configure({ blas })) speeds it
 * up as it does matmul. The backward is two more GEMMs (dw = gᵀ·colsᵀ, dcols = wᵀ·gᵀ), column
 * sums for db and col2im for dx.
 *
 * dtypes: x f32 with w f32, f16 or bf16 (a half weight rounds the columns to its dtype, and the
 * product accumulates in f32, as matmul does under mixed precision), or x and w f64. b has w's
 * dtype, or f32 beside a half w. The output is f32 (f64 for f64).
 */
export function conv2d(x: Tensor, w: Tensor, b?: Tensor, opts: Conv2dOptions = {}): Tensor {
  checkInput(OP, "x", x);
  checkInput(OP, "w", w);
  if (b !== undefined && b !== null) checkInput(OP, "b", b);
  const bias = b ?? undefined;
  const g = geometry(x, w, bias, opts);
  const o = w.shape[0];
  const k = g.c * g.kh * g.kw;
  const np = g.n * g.oh * g.ow;
  const half = isHalf(w.dtype) ? w.dtype : undefined;

  const cols = new Tensor([k, np], x.dtype);
  if (x.dtype === "f32") as().im2col_f32(x.ptr, cols.ptr, ...geometryArgs(g));
  else im2col(x.data() as Float64Array, cols.data() as Float64Array, g);
  const w2 = new Tensor([o, k], w.dtype);
  as().copy_bytes(w2.ptr, w.ptr, w.byteLength);
  const colsOp = half ? toDType(cols, half) : cols;
  if (colsOp !== cols) cols.dispose();
  const bias32 = bias !== undefined && isHalf(bias.dtype) ? toDType(bias, "f32") : bias;
  let out: Tensor;
  try {
    const y = product(colsOp, w2, { transA: true, transB: true, bias: bias32 }); // [N·OH·OW, O]
    out = new Tensor([g.n, o, g.oh, g.ow], y.dtype);
    imagesTranspose(y, out, g.n, g.oh * g.ow, o);
    y.dispose();
  } finally {
    if (bias32 !== bias) bias32?.dispose();
  }
  const tape = tapeFor(x, w, bias);
  if (!tape) {
    colsOp.dispose();
    w2.dispose();
    return out;
  }
  tape.record(out, (grad, sink) => backward(grad, x, w, bias, colsOp, w2, half, g, sink), [colsOp, w2], [colsOp, w2]);
  return out;
}

function backward(
  grad: Tensor,
  x: Tensor,
  w: Tensor,
  bias: Tensor | undefined,
  colsOp: Tensor,
  w2: Tensor,
  half: HalfDType | undefined,
  g: Geometry,
  sink: GradSink,
): void {
  const o = w.shape[0];
  const p = g.oh * g.ow;
  const g2 = new Tensor([g.n * p, o], grad.dtype); // dL/dy in the GEMM's layout
  imagesTranspose(grad, g2, g.n, o, p);
  const gOp = half ? toDType(g2, half) : g2;
  try {
    if (bias) {
      const db = sink.buffer(bias);
      if (db) colSums(g2, db.out, g.n * p, o, db.accumulate);
    }
    // dw [O, K] = g2ᵀ · colsᵀ
    sink.assign(w, (dw) => {
      const t = product(gOp, colsOp, { transA: true, transB: true });
      as().copy_bytes(dw.ptr, t.ptr, t.byteLength);
      t.dispose();
    });
    const dx = sink.buffer(x);
    if (dx) {
      // dcols [K, N·OH·OW] = w2ᵀ · g2ᵀ, scattered back by col2im
      const dcols = product(w2, gOp, { transA: true, transB: true });
      const out = dx.out.data() as Float32Array | Float64Array;
      if (!dx.accumulate) out.fill(0);
      if (x.dtype === "f32") as().col2im_f32(dcols.ptr, dx.out.ptr, ...geometryArgs(g));
      else col2im(dcols.data() as Float64Array, out as Float64Array, g);
      dcols.dispose();
    }
  } finally {
    if (gOp !== g2) gOp.dispose();
    g2.dispose();
  }
}

/** out[i] = transpose of src[i] for `count` [rows, cols] matrices stored one after another. */
function imagesTranspose(src: Tensor, out: Tensor, count: number, rows: number, cols: number): void {
  const bytes = bytesOf(src.dtype);
  const fn = bytes === 8 ? as().transpose_64 : as().transpose_32;
  const step = rows * cols * bytes;
  for (let i = 0; i < count; i++) fn(src.ptr + i * step, out.ptr + i * step, rows, cols);
}

/** The checked sizes and dtypes of a convolution; errors name the op, both shapes and the rule. */
function geometry(x: Tensor, w: Tensor, b: Tensor | undefined, opts: Conv2dOptions): Geometry {
  if (opts === null || typeof opts !== "object") {
    throw new TypeError(`plait: ${OP}: argument opts must be an object { stride, padding, dilation }, got ${opts}`);
  }
  for (const key of Object.keys(opts)) {
    if (key !== "stride" && key !== "padding" && key !== "dilation") {
      throw new TypeError(`plait: ${OP}: unknown option ${key}; known options: stride, padding, dilation`);
    }
  }
  if (x.ndim !== 4) {
    throw new RangeError(
      `plait: ${OP}: argument x must be [batch, channels, height, width], got shape ${shapeStr(x.shape)}`,
    );
  }
  if (w.ndim !== 4) {
    throw new RangeError(
      `plait: ${OP}: argument w must be [outChannels, inChannels, kernelHeight, kernelWidth], got shape ${shapeStr(w.shape)}`,
    );
  }
  const [n, c, h, wd] = x.shape;
  const [o, wc, kh, kw] = w.shape;
  if (c !== wc) {
    throw new RangeError(
      `plait: ${OP}: input has ${c} channels, weight expects ${wc} (x ${shapeStr(x.shape)}, w ${shapeStr(w.shape)})`,
    );
  }
  if (b !== undefined && (b.ndim !== 1 || b.shape[0] !== o)) {
    throw new RangeError(
      `plait: ${OP}: argument b has shape ${shapeStr(b.shape)}, expected [${o}] (one per output channel of w ${shapeStr(w.shape)})`,
    );
  }
  checkDTypes(x, w, b);
  const [sh, sw] = pairOf(OP, "stride", opts.stride, 1, 1);
  const [ph, pw] = pairOf(OP, "padding", opts.padding, 0, 0);
  const [dh, dw] = pairOf(OP, "dilation", opts.dilation, 1, 1);
  if (kh === 0 || kw === 0) throw new RangeError(`plait: ${OP}: argument w has an empty kernel ${shapeStr(w.shape)}`);
  const oh = outSize(OP, "height", h, kh, sh, ph, dh);
  const ow = outSize(OP, "width", wd, kw, sw, pw, dw);
  return { n, c, h, w: wd, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow };
}

function checkDTypes(x: Tensor, w: Tensor, b: Tensor | undefined): void {
  const ok = x.dtype === "f64" ? w.dtype === "f64" : x.dtype === "f32" && (w.dtype === "f32" || isHalf(w.dtype));
  if (!ok) {
    throw new TypeError(
      `plait: ${OP}: arguments x (${x.dtype}) and w (${w.dtype}) are not a supported pair; supported: f32 x with f32, f16 or bf16 w, f64 with f64`,
    );
  }
  if (b !== undefined && b.dtype !== w.dtype && !(isHalf(w.dtype) && b.dtype === "f32")) {
    throw new TypeError(
      `plait: ${OP}: argument b has dtype ${b.dtype}, expected ${w.dtype} like w${isHalf(w.dtype) ? " (or f32)" : ""}`,
    );
  }
}
