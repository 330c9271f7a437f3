import { describe, expect, it } from "vitest";
import { Rng } from "../src/data/rng.ts";
import { blasStatus, cast, configure, scope, type Tensor, type Tree, tensor } from "../src/index.ts";
import { add, mul } from "../src/ops/arith.ts";
import { type Conv2dOptions, conv2d } from "../src/ops/conv.ts";
import { avgPool2d, maxPool2d } from "../src/ops/pool.ts";
import { sum } from "../src/ops/reduce.ts";
import { valueAndGrad } from "../src/ops/valueAndGrad.ts";
import { expectClose, gradCheck, type Params, randn, randTensor } from "./ops-gradcheck.ts";

const pair = (v: number | readonly [number, number] | undefined, d: number): [number, number] =>
  v === undefined ? [d, d] : typeof v === "number" ? [v, v] : [v[0], v[1]];

/** Direct convolution in float64: the definition, one output element at a time. */
function convRef(
  x: ArrayLike<number>,
  xs: number[],
  w: ArrayLike<number>,
  ws: number[],
  b: ArrayLike<number> | undefined,
  o: Conv2dOptions,
) {
  const [n, c, h, wd] = xs;
  const [oc, , kh, kw] = ws;
  const [sh, sw] = pair(o.stride, 1);
  const [ph, pw] = pair(o.padding, 0);
  const [dh, dw] = pair(o.dilation, 1);
  const oh = Math.floor((h + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((wd + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
  const out = new Float64Array(n * oc * oh * ow);
  for (let b0 = 0; b0 < n; b0++)
    for (let f = 0; f < oc; f++)
      for (let y = 0; y < oh; y++)
        for (let z = 0; z < ow; z++) {
          let s = b ? b[f] : 0;
          for (let ci = 0; ci < c; ci++)
            for (let i = 0; i < kh; i++)
              for (let j = 0; j < kw; j++) {
                const iy = y * sh - ph + i * dh;
                const ix = z * sw - pw + j * dw;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                s += x[((b0 * c + ci) * h + iy) * wd + ix] * w[((f * c + ci) * kh + i) * kw + j];
              }
          out[((b0 * oc + f) * oh + y) * ow + z] = s;
        }
  return { out, shape: [n, oc, oh, ow] };
}

/** Pooling by definition in float64 (−∞ / zero padding; torch's divisors). */
function poolRef(
  kind: "max" | "avg",
  x: ArrayLike<number>,
  xs: number[],
  k: number,
  s: number,
  p: number,
  include = true,
) {
  const [n, c, h, w] = xs;
  const oh = Math.floor((h + 2 * p - k) / s) + 1;
  const ow = Math.floor((w + 2 * p - k) / s) + 1;
  const out: number[] = [];
  for (let pl = 0; pl < n * c; pl++)
    for (let y = 0; y < oh; y++)
      for (let z = 0; z < ow; z++) {
        let m = Number.NEGATIVE_INFINITY;
        let t = 0;
        let cnt = 0;
        for (let i = 0; i < k; i++)
          for (let j = 0; j < k; j++) {
            const iy = y * s - p + i;
            const ix = z * s - p + j;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
            const v = x[(pl * h + iy) * w + ix];
            m = Math.max(m, v);
            t += v;
            cnt++;
          }
        const div = include
          ? (Math.min(y * s - p + k, h + p) - (y * s - p)) * (Math.min(z * s - p + k, w + p) - (z * s - p))
          : cnt;
        out.push(kind === "max" ? m : t / div);
      }
  return { out, shape: [n, c, oh, ow] };
}

const CASES: { xs: number[]; ws: number[]; o: Conv2dOptions }[] = [
  { xs: [2, 3, 6, 5], ws: [4, 3, 3, 3], o: {} },
  { xs: [2, 2, 7, 7], ws: [3, 2, 3, 2], o: { stride: 2, padding: 1 } },
  { xs: [1, 2, 8, 9], ws: [2, 2, 3, 3], o: { stride: [1, 2], padding: [2, 1], dilation: 2 } },
  { xs: [3, 1, 5, 5], ws: [2, 1, 1, 1], o: { stride: 3 } },
  { xs: [2, 1, 4, 4], ws: [1, 1, 4, 4], o: { padding: 3, dilation: [1, 1] } },
];

describe("conv2d", () => {
  const rng = new Rng(11);

  for (const [ci, { xs, ws, o }] of CASES.entries()) {
    it(`matches direct convolution in float64, f64 and f32 (case ${ci}: x [${xs}], w [${ws}], ${JSON.stringify(o)})`, () => {
      scope(() => {
        const xv = randn(
          rng,
          xs.reduce((a, b) => a * b),
        );
        const wv = randn(
          rng,
          ws.reduce((a, b) => a * b),
        );
        const bv = randn(rng, ws[0]);
        const ref = convRef(xv, xs, wv, ws, bv, o);
        for (const dtype of ["f64", "f32"] as const) {
          const y = conv2d(tensor(xv, xs, { dtype }), tensor(wv, ws, { dtype }), tensor(bv, [ws[0]], { dtype }), o);
          expect(y.shape).toEqual(ref.shape);
          expect(y.dtype).toBe(dtype);
          const bound = ws[1] * ws[2] * ws[3] * (dtype === "f64" ? 1e-15 : 1e-6) * 8;
          expectClose(y.toArray(), ref.out, () => bound, `conv2d ${dtype}`);
        }
        const noBias = convRef(xv, xs, wv, ws, undefined, o);
        const y = conv2d(tensor(xv, xs, { dtype: "f64" }), tensor(wv, ws, { dtype: "f64" }), undefined, o);
        expectClose(y.toArray(), noBias.out, () => 1e-12, "conv2d without bias");
      });
    });

    it(`gradients of x, w and b pass the float64 gradient check (case ${ci})`, () => {
      scope(() => {
        const params: Params = {
          x: randTensor(rng, xs),
          w: randTensor(rng, ws),
          b: randTensor(rng, [ws[0]]),
        };
        const shape = convRef(
          new Float64Array(xs.reduce((a, b) => a * b)),
          xs,
          new Float64Array(ws.reduce((a, b) => a * b)),
          ws,
          undefined,
          o,
        ).shape;
        const r = randTensor(rng, shape);
        gradCheck(params, (p) => sum(mul(conv2d(p.x, p.w, p.b, o), r)));
      });
    });
  }

  it("the f32 kernels (im2col, col2im) give the f64 loops' gradients of x, w and b, in every case", () => {
    for (const { xs, ws, o } of CASES) {
      scope(() => {
        const p64: Params = { x: randTensor(rng, xs), w: randTensor(rng, ws), b: randTensor(rng, [ws[0]]) };
        const r = randTensor(rng, conv2d(p64.x, p64.w, undefined, o).shape as number[]);
        const lossOf = (rr: Tensor) => (p: Tree) => {
          const q = p as Params;
          return sum(mul(conv2d(q.x, q.w, q.b, o), rr));
        };
        const g64 = valueAndGrad(lossOf(r))(p64, undefined).grads as Params;
        const p32: Params = { x: cast(p64.x, "f32"), w: cast(p64.w, "f32"), b: cast(p64.b, "f32") };
        const g32 = valueAndGrad(lossOf(cast(r, "f32")))(p32, undefined).grads as Params;
        for (const k of ["x", "w", "b"]) {
          const scale = Math.max(...g64[k].toArray().map(Math.abs));
          expectClose(g32[k].toArray(), g64[k].toArray(), () => 1e-5 * scale * 8, `d${k} f32 vs f64`);
        }
      });
    }
  });

  it("gradients accumulate when a tensor feeds two convolutions, and flow through a stack of them", () => {
    scope(() => {
      const params: Params = {
        x: randTensor(rng, [2, 2, 6, 6]),
        w: randTensor(rng, [3, 2, 3, 3]),
        w2: randTensor(rng, [2, 3, 2, 2]),
      };
      const r = randTensor(rng, [2, 2, 3, 3]);
      const r1 = randTensor(rng, [2, 3, 6, 6]);
      gradCheck(params, (p) => {
        const h = conv2d(p.x, p.w, undefined, { padding: 1 });
        const h2 = conv2d(conv2d(p.x, p.w, undefined, { padding: 1 }), p.w2, undefined, { stride: 2 });
        return add(sum(mul(h2, r)), sum(mul(h, r1)));
      });
    });
  });

  it("runs a half weight with f32 accumulation: the columns rounded to bf16, the output f32", () => {
    scope(() => {
      const xs = [2, 3, 5, 5];
      const ws = [4, 3, 3, 3];
      const x = randTensor(rng, xs, "f32");
      const w = randTensor(rng, ws, "f32");
      for (const half of ["bf16", "f16"] as const) {
        const wh = cast(w, half);
        const xr = cast(cast(x, half), "f64").toArray();
        const ref = convRef(xr, xs, cast(wh, "f64").toArray(), ws, undefined, { padding: 1 });
        const y = conv2d(x, wh, undefined, { padding: 1 });
        expect(y.dtype).toBe("f32");
        expectClose(y.toArray(), ref.out, () => 1e-4, `conv2d ${half}`);
      }
    });
  });

  it("matches the WASM GEMM on the system BLAS when one is in use", () => {
    scope(() => {
      const x = randTensor(rng, [2, 3, 8, 8], "f32");
      const w = randTensor(rng, [5, 3, 3, 3], "f32");
      const before = blasStatus().mode;
      try {
        configure({ blas: "off" });
        const a = conv2d(x, w, undefined, { padding: 1 }).toArray();
        configure({ blas: "auto" });
        const b = conv2d(x, w, undefined, { padding: 1 }).toArray();
        expectClose(b, a, () => 1e-4, "blas vs wasm");
      } finally {
        configure({ blas: before });
      }
    });
  });

  it("names the op, both shapes and the rule on bad input", () => {
    scope(() => {
      const x = randTensor(rng, [1, 3, 5, 5], "f32");
      const w = randTensor(rng, [2, 1, 3, 3], "f32");
      expect(() => conv2d(x, w)).toThrow("conv2d: input has 3 channels, weight expects 1");
      const w3 = randTensor(rng, [2, 3, 3, 3], "f32");
      expect(() => conv2d(randTensor(rng, [3, 5, 5], "f32"), w3)).toThrow(
        "conv2d: argument x must be [batch, channels, height, width], got shape [3, 5, 5]",
      );
      expect(() => conv2d(x, randTensor(rng, [2, 3, 3], "f32"))).toThrow("argument w must be [outChannels");
      expect(() => conv2d(x, w3, randTensor(rng, [3], "f32"))).toThrow("argument b has shape [3], expected [2]");
      expect(() => conv2d(x, randTensor(rng, [2, 3, 7, 3], "f32"))).toThrow(
        "conv2d: the height window 7 (kernel 7, dilation 1) is larger than the padded input height 5 + 2·0",
      );
      expect(() => conv2d(x, w3, undefined, { stride: 0 })).toThrow("conv2d: option stride must be an integer ≥ 1");
      expect(() => conv2d(x, w3, undefined, { padding: -1 })).toThrow("option padding must be an integer ≥ 0");
      expect(() => conv2d(x, w3, undefined, { dilation: [1, 1, 1] as never })).toThrow("option dilation");
      expect(() => conv2d(x, w3, undefined, { strides: 2 } as never)).toThrow("conv2d: unknown option strides");
      expect(() => conv2d(x, cast(w3, "f64"))).toThrow("arguments x (f32) and w (f64) are not a supported pair");
      expect(() => conv2d(x, w3, randTensor(rng, [2], "f64"))).toThrow("argument b has dtype f64, expected f32");
      expect(() => conv2d(x, "w" as never)).toThrow("conv2d");
    });
  });
});

describe("maxPool2d and avgPool2d", () => {
  const rng = new Rng(12);
  const CONFIGS = [
    { xs: [2, 3, 6, 6], k: 2, s: 2, p: 0 },
    { xs: [1, 2, 7, 5], k: 3, s: 2, p: 1 },
    { xs: [2, 1, 5, 5], k: 3, s: 1, p: 1 },
  ];

  for (const { xs, k, s, p } of CONFIGS) {
    it(`match the float64 definitions, forward and gradient (x [${xs}], kernel ${k}, stride ${s}, padding ${p})`, () => {
      scope(() => {
        const xv = randn(
          rng,
          xs.reduce((a, b) => a * b),
        );
        for (const dtype of ["f64", "f32"] as const) {
          const x = tensor(xv, xs, { dtype });
          const xr = dtype === "f32" ? Array.from(xv, Math.fround) : xv;
          const mp = maxPool2d(x, { kernel: k, stride: s, padding: p });
          const mref = poolRef("max", xr, xs, k, s, p);
          expect(mp.shape).toEqual(mref.shape);
          expectClose(mp.toArray(), mref.out, () => 0, `max ${dtype}`);
          for (const include of [true, false]) {
            const ap = avgPool2d(x, { kernel: k, stride: s, padding: p, countIncludePad: include });
            expectClose(
              ap.toArray(),
              poolRef("avg", xr, xs, k, s, p, include).out,
              () => (dtype === "f64" ? 1e-15 : 1e-6),
              `avg ${dtype}`,
            );
          }
        }
        const params: Params = { x: tensor(xv, xs, { dtype: "f64" }) };
        const r = randTensor(rng, poolRef("max", xv, xs, k, s, p).shape);
        gradCheck(params, (q) => sum(mul(maxPool2d(q.x, { kernel: k, stride: s, padding: p }), r)));
        for (const countIncludePad of [true, false]) {
          gradCheck(params, (q) => sum(mul(avgPool2d(q.x, { kernel: k, stride: s, padding: p, countIncludePad }), r)));
        }
      });
    });
  }

  it("the f32 2×2 kernel gives the f64 loop's values and gradient, ties included", () => {
    scope(() => {
      const xv = Array.from(randn(rng, 2 * 3 * 7 * 6), (v) => Math.round(v * 2) / 2); // halves: many ties
      const x64 = tensor(xv, [2, 3, 7, 6], { dtype: "f64" });
      const r = randTensor(rng, [2, 3, 3, 3]);
      const run = (x: Tensor, rr: Tensor) => {
        const y = maxPool2d(x, { kernel: 2 }).toArray();
        const { grads } = valueAndGrad((p: Tree) => sum(mul(maxPool2d((p as Params).x, { kernel: 2 }), rr)))(
          { x },
          undefined,
        );
        return { y, dx: (grads as Params).x.toArray() };
      };
      const a = run(x64, r);
      const b = run(cast(x64, "f32"), cast(r, "f32"));
      expect(b.y).toEqual(a.y);
      expectClose(b.dx, a.dx, () => 1e-6, "dx");
    });
  });

  it("max pooling propagates NaN and sends the gradient to the first maximum at ties", () => {
    scope(() => {
      const x = tensor([1, Number.NaN, 3, 2], [1, 1, 2, 2], { dtype: "f32" });
      expect(maxPool2d(x, { kernel: 2 }).toArray()).toEqual([Number.NaN]);
      const x3 = tensor([1, 2, 3, 4, Number.NaN, 6, 7, 8, 9], [1, 1, 3, 3], { dtype: "f64" });
      expect(maxPool2d(x3, { kernel: 3 }).toArray()).toEqual([Number.NaN]); // the general loop
      const t = tensor([5, 5, 1, 5], [1, 1, 2, 2], { dtype: "f64" });
      gradCheckTie(t);
    });
  });

  it("refuse bad input naming the op and the rule", () => {
    scope(() => {
      const x = randTensor(rng, [1, 1, 4, 4], "f32");
      expect(() => maxPool2d(x, { kernel: 3, padding: 2 })).toThrow(
        "maxPool2d: option padding [2, 2] must be at most half the kernel [3, 3]",
      );
      expect(() => avgPool2d(x, { kernel: 5 })).toThrow("avgPool2d: the height window 5");
      expect(() => maxPool2d(randTensor(rng, [4, 4], "f32"), { kernel: 2 })).toThrow(
        "maxPool2d: argument x must be [batch, channels, height, width], got shape [4, 4]",
      );
      expect(() => maxPool2d(x, {} as never)).toThrow("maxPool2d: option kernel is required");
      expect(() => avgPool2d(x, { kernel: 2, countIncludePad: 1 as never })).toThrow(
        "countIncludePad must be a boolean",
      );
      expect(() => maxPool2d(x, { kernel: 2, size: 2 } as never)).toThrow("maxPool2d: unknown option size");
      expect(() => maxPool2d(cast(x, "bf16"), { kernel: 2 })).toThrow("maxPool2d: argument x has dtype bf16");
    });
  });
});

function gradCheckTie(t: Tensor): void {
  const { grads } = valueAndGrad((p: Tree) => sum(maxPool2d((p as Params).t, { kernel: 2 })))({ t }, undefined);
  expect((grads as Params).t.toArray()).toEqual([1, 0, 0, 0]);
}
