// im2col and col2im for conv2d (src/ops/conv.ts), f32, NCHW: the column matrix is
// [C·KH·KW, N·OH·OW], cols[(c·KH + i)·KW + j, (n·OH + oy)·OW + ox] = x[n, c, oy·sh − ph + i·dh,
// ox·sw − pw + j·dw] (0 outside the input). Each (c, i, j, n, oy) is a run of at most OW
// elements, contiguous in both for stride 1; runs are short (the output width), so the loops are
// scalar, with the valid columns [lo, hi) computed once per (j) instead of tested per element.
// Reference: caffe/src/caffe/util/im2col.cpp (im2col_cpu, col2im_cpu), and the TypeScript loops in
// src/ops/im2col.ts that f64 runs (tested against direct convolution in test/ops-conv.test.ts).

@inline
function lowCol(j: i32, pw: i32, sw: i32, dw: i32): i32 {
  const off = j * dw - pw;
  return off >= 0 ? 0 : (-off + sw - 1) / sw;
}

@inline
function highCol(j: i32, pw: i32, sw: i32, dw: i32, w: i32, ow: i32): i32 {
  const off = j * dw - pw;
  const last = w - 1 - off; // the largest ox·sw that stays inside
  if (last < 0) return 0;
  const hi = last / sw + 1;
  return hi < ow ? hi : ow;
}

export function im2col_f32(
  x: usize, cols: usize, n: i32, c: i32, h: i32, w: i32, kh: i32, kw: i32,
  sh: i32, sw: i32, ph: i32, pw: i32, dh: i32, dw: i32, oh: i32, ow: i32,
): void {
  const np = <usize>(n * oh * ow);
  if (ph > 0 || pw > 0) memory.fill(cols, 0, np * <usize>(c * kh * kw) << 2);
  for (let ci = 0; ci < c; ci++) {
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const lo = lowCol(j, pw, sw, dw);
        const hi = max(lo, highCol(j, pw, sw, dw, w, ow));
        const xOff = lo * sw + j * dw - pw;
        let dst = cols + ((<usize>((ci * kh + i) * kw + j) * np) << 2);
        for (let b = 0; b < n; b++) {
          const plane = (b * c + ci) * h;
          for (let oy = 0; oy < oh; oy++, dst += <usize>ow << 2) {
            const iy = oy * sh - ph + i * dh;
            if (iy < 0 || iy >= h) continue;
            let src = x + (<usize>((plane + iy) * w + xOff) << 2);
            const step = <usize>sw << 2;
            for (let ox = lo; ox < hi; ox++, src += step) store<f32>(dst + (<usize>ox << 2), load<f32>(src));
          }
        }
      }
    }
  }
}

/** The adjoint of im2col_f32: dx[n, c, iy, ix] += every column entry im2col copied from there. */
export function col2im_f32(
  cols: usize, dx: usize, n: i32, c: i32, h: i32, w: i32, kh: i32, kw: i32,
  sh: i32, sw: i32, ph: i32, pw: i32, dh: i32, dw: i32, oh: i32, ow: i32,
): void {
  const np = <usize>(n * oh * ow);
  for (let ci = 0; ci < c; ci++) {
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const lo = lowCol(j, pw, sw, dw);
        const hi = max(lo, highCol(j, pw, sw, dw, w, ow));
        const xOff = lo * sw + j * dw - pw;
        let src = cols + ((<usize>((ci * kh + i) * kw + j) * np) << 2);
        for (let b = 0; b < n; b++) {
          const plane = (b * c + ci) * h;
          for (let oy = 0; oy < oh; oy++, src += <usize>ow << 2) {
            const iy = oy * sh - ph + i * dh;
            if (iy < 0 || iy >= h) continue;
            let dst = dx + (<usize>((plane + iy) * w + xOff) << 2);
            const step = <usize>sw << 2;
            for (let ox = lo; ox < hi; ox++, dst += step) {
              store<f32>(dst, load<f32>(dst) + load<f32>(src + (<usize>ox << 2)));
            }
          }
        }
      }
    }
  }
}
