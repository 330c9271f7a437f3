import { shapeStr, Tensor } from "../core/tensor.ts";
import { checkDTypeIn, checkInput } from "./check.ts";
import { type Geometry, outSize, type Pair, pairOf } from "./im2col.ts";
import { as } from "./kernels.ts";
import { tapeFor } from "./tape.ts";

// 2-D max and average pooling over NCHW inputs: f32 2×2/stride-2 max pooling runs the
// AssemblyScript kernels (kernels/as/max_pool.ts), everything else TypeScript loops over typed
// arrays (a window touches few elements; the loops are memory-bound).

export interface Pool2dOptions {
  /** Window size: a number or [height, width]. */
  kernel: Pair;
  /** Step of the window. Default: the kernel (non-overlapping windows, as torch). */
  stride?: Pair;
  /** Padding on each side (−∞ for max, zeros for average); at most half the kernel. Default 0. */
  padding?: Pair;
}

export interface AvgPool2dOptions extends Pool2dOptions {
  /** Divide by the whole window, padding included (torch's count_include_pad). Default true. */
  countIncludePad?: boolean;
}

type Floats = Float32Array | Float64Array;

/**
 * Max over each kernel window of x [N, C, H, W] (torch.nn.functional.max_pool2d): out
 * [N, C, OH, OW]. A window holding a NaN gives NaN. The gradient goes to the element that
 * attains the maximum (the first in row-major order at ties).
 */
export function maxPool2d(x: Tensor, opts: Pool2dOptions): Tensor {
  const op = "maxPool2d";
  const g = poolGeometry(op, x, opts, ["kernel", "stride", "padding"]);
  const out = new Tensor([g.n, g.c, g.oh, g.ow], x.dtype);
  const argT = new Tensor(out.shape, "i32"); // the flat index in x of each output's maximum
  const f32 = x.dtype === "f32";
  if (g.kh === 2 && g.kw === 2 && g.sh === 2 && g.sw === 2 && g.ph === 0 && g.pw === 0) {
    if (f32) as().max_pool2x2_f32(x.ptr, out.ptr, argT.ptr, g.n * g.c, g.h, g.w, g.oh, g.ow);
    else maxPool2x2(x.data() as Floats, out.data() as Floats, argT.data() as Int32Array, g);
  } else maxPoolAny(x.data() as Floats, out.data() as Floats, argT.data() as Int32Array, g);
  const tape = tapeFor(x);
  if (!tape) {
    argT.dispose();
    return out;
  }
  tape.record(
    out,
    (grad, sink) => {
      const dx = sink.buffer(x);
      if (!dx) return;
      const d = dx.out.data() as Floats;
      if (!dx.accumulate) d.fill(0);
      if (f32) as().max_pool_scatter_f32(grad.ptr, argT.ptr, dx.out.ptr, argT.size);
      else {
        const gs = grad.data() as Floats;
        const arg = argT.data() as Int32Array;
        for (let i = 0; i < arg.length; i++) d[arg[i]] += gs[i];
      }
    },
    [argT],
    [argT],
  );
  return out;
}

/** The CNN's 2×2 window with stride 2, without the general loop's bounds (same ties and NaN rule). */
function maxPool2x2(xs: Floats, ys: Floats, arg: Int32Array, g: Geometry): void {
  const { h, w, oh, ow } = g;
  let o = 0;
  for (let plane = 0; plane < g.n * g.c; plane++) {
    for (let oy = 0; oy < oh; oy++) {
      const r0 = plane * h * w + 2 * oy * w;
      for (let ox = 0; ox < ow; ox++, o++) {
        let at = r0 + 2 * ox;
        let best = xs[at];
        for (let k = 1; k < 4; k++) {
          const i = r0 + 2 * ox + (k >> 1) * w + (k & 1);
          const v = xs[i];
          if (v > best || (Number.isNaN(v) && !Number.isNaN(best))) {
            best = v;
            at = i;
          }
        }
        ys[o] = best;
        arg[o] = at;
      }
    }
  }
}

function maxPoolAny(xs: Floats, ys: Floats, arg: Int32Array, g: Geometry): void {
  const { h, w, kh, kw, sh, sw, ph, pw, oh, ow } = g;
  let o = 0;
  for (let plane = 0; plane < g.n * g.c; plane++) {
    const base = plane * h * w;
    for (let oy = 0; oy < oh; oy++) {
      const y0 = Math.max(0, oy * sh - ph);
      const y1 = Math.min(h, oy * sh - ph + kh);
      for (let ox = 0; ox < ow; ox++, o++) {
        const x0 = Math.max(0, ox * sw - pw);
        const x1 = Math.min(w, ox * sw - pw + kw);
        let best = Number.NEGATIVE_INFINITY;
        let at = base + y0 * w + x0;
        for (let iy = y0; iy < y1; iy++) {
          for (let ix = base + iy * w + x0, end = base + iy * w + x1; ix < end; ix++) {
            const v = xs[ix];
            if (v > best || (Number.isNaN(v) && !Number.isNaN(best))) {
              best = v;
              at = ix;
            }
          }
        }
        ys[o] = best;
        arg[o] = at;
      }
    }
  }
}

/**
 * Mean over each kernel window of x [N, C, H, W] (torch.nn.functional.avg_pool2d): out
 * [N, C, OH, OW]. With padding, the divisor is the whole window unless countIncludePad is
 * false (then the count of input elements in it).
 */
export function avgPool2d(x: Tensor, opts: AvgPool2dOptions): Tensor {
  const op = "avgPool2d";
  const g = poolGeometry(op, x, opts, ["kernel", "stride", "padding", "countIncludePad"]);
  const include = opts.countIncludePad ?? true;
  if (typeof include !== "boolean") {
    throw new TypeError(`plait: ${op}: option countIncludePad must be a boolean, got ${JSON.stringify(include)}`);
  }
  const out = new Tensor([g.n, g.c, g.oh, g.ow], x.dtype);
  const xs = x.data() as Floats;
  const ys = out.data() as Floats;
  windows(g, include, (o, base, y0, y1, x0, x1, inv) => {
    let s = 0;
    for (let iy = y0; iy < y1; iy++) for (let ix = x0; ix < x1; ix++) s += xs[base + iy * g.w + ix];
    ys[o] = s * inv;
  });
  const tape = tapeFor(x);
  if (tape) {
    tape.record(
      out,
      (grad, sink) => {
        const dx = sink.buffer(x);
        if (!dx) return;
        const d = dx.out.data() as Floats;
        if (!dx.accumulate) d.fill(0);
        const gs = grad.data() as Floats;
        windows(g, include, (o, base, y0, y1, x0, x1, inv) => {
          const v = gs[o] * inv;
          for (let iy = y0; iy < y1; iy++) for (let ix = x0; ix < x1; ix++) d[base + iy * g.w + ix] += v;
        });
      },
      [],
    );
  }
  return out;
}

/** Calls `fn` for each output element with its plane's offset, its window clipped to the input and 1/divisor. */
function windows(
  g: Geometry,
  include: boolean,
  fn: (o: number, base: number, y0: number, y1: number, x0: number, x1: number, inv: number) => void,
): void {
  const { h, w, kh, kw, sh, sw, ph, pw, oh, ow } = g;
  let o = 0;
  for (let plane = 0; plane < g.n * g.c; plane++) {
    const base = plane * h * w;
    for (let oy = 0; oy < oh; oy++) {
      const y0 = Math.max(0, oy * sh - ph);
      const y1 = Math.min(h, oy * sh - ph + kh);
      for (let ox = 0; ox < ow; ox++, o++) {
        const x0 = Math.max(0, ox * sw - pw);
        const x1 = Math.min(w, ox * sw - pw + kw);
        // torch's divisor with count_include_pad: the window clipped to the padded input
        const full =
          (Math.min(oy * sh - ph + kh, h + ph) - (oy * sh - ph)) *
          (Math.min(ox * sw - pw + kw, w + pw) - (ox * sw - pw));
        fn(o, base, y0, y1, x0, x1, 1 / (include ? full : (y1 - y0) * (x1 - x0)));
      }
    }
  }
}

function poolGeometry(op: string, x: Tensor, opts: Pool2dOptions, known: readonly string[]): Geometry {
  checkInput(op, "x", x);
  checkDTypeIn(op, "x", x, ["f32", "f64"]);
  if (opts === null || typeof opts !== "object") {
    throw new TypeError(`plait: ${op}: argument opts must be an object { kernel, stride?, padding? }, got ${opts}`);
  }
  for (const key of Object.keys(opts)) {
    if (!known.includes(key))
      throw new TypeError(`plait: ${op}: unknown option ${key}; known options: ${known.join(", ")}`);
  }
  if (x.ndim !== 4) {
    throw new RangeError(
      `plait: ${op}: argument x must be [batch, channels, height, width], got shape ${shapeStr(x.shape)}`,
    );
  }
  if (opts.kernel === undefined)
    throw new TypeError(`plait: ${op}: option kernel is required (a number or [height, width])`);
  const [kh, kw] = pairOf(op, "kernel", opts.kernel, 1, 1);
  const [sh, sw] = pairOf(op, "stride", opts.stride, [kh, kw], 1);
  const [ph, pw] = pairOf(op, "padding", opts.padding, 0, 0);
  if (2 * ph > kh || 2 * pw > kw) {
    throw new RangeError(
      `plait: ${op}: option padding [${ph}, ${pw}] must be at most half the kernel [${kh}, ${kw}] (as torch requires)`,
    );
  }
  const [n, c, h, w] = x.shape;
  const oh = outSize(op, "height", h, kh, sh, ph, 1);
  const ow = outSize(op, "width", w, kw, sw, pw, 1);
  return { n, c, h, w, kh, kw, sh, sw, ph, pw, dh: 1, dw: 1, oh, ow };
}
