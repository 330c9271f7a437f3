// im2col / col2im for conv2d (NCHW): f32 runs the AssemblyScript kernels (kernels/as/im2col.ts),
// f64 these TypeScript loops over typed arrays (the same walk). The column matrix
// is laid out [C·KH·KW, N·OH·OW] (caffe's im2col with the batch folded into the columns): for
// stride 1 each of its rows is filled by runs that are contiguous in the input too, so the loop
// is a row copy. Reference: caffe/src/caffe/util/im2col.cpp (im2col_cpu, col2im_cpu).

/** The sizes of one 2-D convolution or pooling window walk over an NCHW input. */
export interface Geometry {
  n: number;
  c: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
  dh: number;
  dw: number;
  oh: number;
  ow: number;
}

type Floats = Float32Array | Float64Array;

/** The output columns ox in [lo, hi) whose input column ox·s − p + j·d lies inside [0, w). */
function validRange(g: Geometry, j: number): [number, number] {
  const off = j * g.dw - g.pw;
  const lo = Math.max(0, Math.ceil(-off / g.sw));
  const hi = Math.min(g.ow, Math.floor((g.w - 1 - off) / g.sw) + 1);
  return [lo, Math.max(lo, hi)];
}

/** cols[(c·KH + i)·KW + j, (n·OH + oy)·OW + ox] = x[n, c, oy·sh − ph + i·dh, ox·sw − pw + j·dw], 0 outside. */
export function im2col(x: Floats, cols: Floats, g: Geometry): void {
  const { n, c, h, w, kh, kw, sh, sw, ph, dh, oh, ow } = g;
  const np = n * oh * ow;
  if (g.ph > 0 || g.pw > 0) cols.fill(0);
  for (let ci = 0; ci < c; ci++) {
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const [lo, hi] = validRange(g, j);
        const xOff = lo * sw + j * g.dw - g.pw;
        let dst = ((ci * kh + i) * kw + j) * np;
        for (let b = 0; b < n; b++) {
          const plane = (b * c + ci) * h;
          for (let oy = 0; oy < oh; oy++, dst += ow) {
            const iy = oy * sh - ph + i * dh;
            if (iy < 0 || iy >= h) continue;
            let src = (plane + iy) * w + xOff;
            if (sw === 1) for (let ox = lo; ox < hi; ox++) cols[dst + ox] = x[src++];
            else for (let ox = lo; ox < hi; ox++, src += sw) cols[dst + ox] = x[src];
          }
        }
      }
    }
  }
}

/** The adjoint of im2col: dx[n, c, iy, ix] += every column entry im2col copied from there. */
export function col2im(cols: Floats, dx: Floats, g: Geometry): void {
  const { n, c, h, w, kh, kw, sh, sw, ph, dh, oh, ow } = g;
  const np = n * oh * ow;
  for (let ci = 0; ci < c; ci++) {
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const [lo, hi] = validRange(g, j);
        const xOff = lo * sw + j * g.dw - g.pw;
        let src = ((ci * kh + i) * kw + j) * np;
        for (let b = 0; b < n; b++) {
          const plane = (b * c + ci) * h;
          for (let oy = 0; oy < oh; oy++, src += ow) {
            const iy = oy * sh - ph + i * dh;
            if (iy < 0 || iy >= h) continue;
            let dst = (plane + iy) * w + xOff;
            for (let ox = lo; ox < hi; ox++, dst += sw) dx[dst] += cols[src + ox];
          }
        }
      }
    }
  }
}

/** The geometry as the AssemblyScript kernels take it (kernels/as/im2col.ts). */
export const geometryArgs = (g: Geometry): number[] => [
  g.n,
  g.c,
  g.h,
  g.w,
  g.kh,
  g.kw,
  g.sh,
  g.sw,
  g.ph,
  g.pw,
  g.dh,
  g.dw,
  g.oh,
  g.ow,
];

/** One spatial option (stride, padding, dilation, kernel): a number or [height, width]. */
export type Pair = number | readonly [number, number];

/** `v` as [height, width], checked to be integers ≥ `min`; errors name the op and the option. */
export function pairOf(op: string, name: string, v: Pair | undefined, fallback: Pair, min: number): [number, number] {
  const p = v ?? fallback;
  const pair: [number, number] = typeof p === "number" ? [p, p] : Array.isArray(p) ? [p[0], p[1]] : [Number.NaN, 0];
  const ok =
    (typeof p === "number" || (Array.isArray(p) && p.length === 2)) &&
    pair.every((d) => Number.isInteger(d) && d >= min);
  if (!ok) {
    throw new RangeError(
      `plait: ${op}: option ${name} must be an integer ≥ ${min} or [height, width] of them, got ${JSON.stringify(v)}`,
    );
  }
  return pair;
}

/** The output size along one axis, or an error naming the op when the window does not fit. */
export function outSize(op: string, axis: string, size: number, k: number, s: number, p: number, d: number): number {
  const span = d * (k - 1) + 1;
  if (size + 2 * p < span) {
    throw new RangeError(
      `plait: ${op}: the ${axis} window ${span} (kernel ${k}, dilation ${d}) is larger than the padded input ${axis} ${size} + 2·${p}`,
    );
  }
  return Math.floor((size + 2 * p - span) / s) + 1;
}
