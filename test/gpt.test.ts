// causalSelfAttention, transformerBlock and gpt: float64 gradient checks, the forward pass
// against a plain-loop float64 reference, causality, half weights (softmax in f32) and bad input.
import { describe, expect, it } from "vitest";
import { Rng } from "../src/data/rng.ts";
import { cast, scope, type Tensor, tensor } from "../src/index.ts";
import {
  type AttentionParams,
  type BlockParams,
  causalSelfAttention,
  initAttention,
  initTransformerBlock,
  transformerBlock,
} from "../src/nn/attention.ts";
import { type GptParams, gpt } from "../src/nn/gpt.ts";
import { mul } from "../src/ops/arith.ts";
import { sum } from "../src/ops/reduce.ts";
import { gradCheck, type Params, randTensor } from "./ops-gradcheck.ts";

type Nested = { [k: string]: Tensor | Nested | Nested[] };

/** Leaves of a nested params object under dotted paths (gradCheck takes a flat record). */
function flatten(tree: Nested, prefix = "", out: Params = {}): Params {
  for (const [k, v] of Object.entries(tree)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (Array.isArray(v)) for (const [i, x] of v.entries()) flatten(x, `${path}.${i}`, out);
    else if ("shape" in v && "dtype" in v) out[path] = v as Tensor;
    else flatten(v as Nested, path, out);
  }
  return out;
}

/** The nested object back from the flat record (same paths). */
function unflatten(flat: Params): Nested {
  const root: Record<string, unknown> = {};
  for (const [path, t] of Object.entries(flat)) {
    const keys = path.split(".");
    let node = root;
    for (const k of keys.slice(0, -1)) {
      node[k] ??= {};
      node = node[k] as Record<string, unknown>;
    }
    node[keys.at(-1)!] = t;
  }
  const arrays = (v: unknown): unknown => {
    if (v === null || typeof v !== "object" || "shape" in (v as object)) return v;
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    const mapped = Object.fromEntries(keys.map((k) => [k, arrays(o[k])]));
    return keys.every((k, i) => k === String(i)) ? keys.map((k) => mapped[k]) : mapped;
  };
  return arrays(root) as Nested;
}

/** A scalar loss that weighs every output element differently, so each gradient entry matters. */
const weighted = (y: Tensor, w: Tensor) => sum(mul(y, w));

// ---- plain float64 reference ----

type Arr = Float64Array;
const arr = (t: Tensor): Arr => Float64Array.from(t.toArray() as ArrayLike<number>);

function refLinear(x: Arr, rows: number, i: number, o: number, w: Arr, b: Arr | undefined): Arr {
  const y = new Float64Array(rows * o);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < o; c++) {
      let s = b ? b[c] : 0;
      for (let k = 0; k < i; k++) s += x[r * i + k] * w[k * o + c];
      y[r * o + c] = s;
    }
  return y;
}

function refLayerNorm(x: Arr, rows: number, d: number, g: Arr, b: Arr): Arr {
  const y = new Float64Array(rows * d);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let j = 0; j < d; j++) m += x[r * d + j];
    m /= d;
    let v = 0;
    for (let j = 0; j < d; j++) v += (x[r * d + j] - m) ** 2;
    v /= d;
    for (let j = 0; j < d; j++) y[r * d + j] = ((x[r * d + j] - m) / Math.sqrt(v + 1e-5)) * g[j] + b[j];
  }
  return y;
}

const refGelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

function refAttention(x: Arr, b: number, t: number, d: number, heads: number, p: AttentionParams): Arr {
  const hd = d / heads;
  const qkv = refLinear(x, b * t, d, 3 * d, arr(p.qkv.w), arr(p.qkv.b));
  const y = new Float64Array(b * t * d);
  for (let n = 0; n < b; n++)
    for (let h = 0; h < heads; h++)
      for (let i = 0; i < t; i++) {
        const at = (pos: number, part: number, j: number) => qkv[(n * t + pos) * 3 * d + part * d + h * hd + j];
        const s: number[] = [];
        for (let j = 0; j <= i; j++) {
          let dot = 0;
          for (let c = 0; c < hd; c++) dot += at(i, 0, c) * at(j, 1, c);
          s.push(dot / Math.sqrt(hd));
        }
        const m = Math.max(...s);
        const e = s.map((v) => Math.exp(v - m));
        const z = e.reduce((a, v) => a + v, 0);
        for (let c = 0; c < hd; c++) {
          let acc = 0;
          for (let j = 0; j <= i; j++) acc += (e[j] / z) * at(j, 2, c);
          y[(n * t + i) * d + h * hd + c] = acc;
        }
      }
  return refLinear(y, b * t, d, d, arr(p.proj.w), arr(p.proj.b));
}

function refBlock(x: Arr, b: number, t: number, d: number, heads: number, p: BlockParams): Arr {
  const a = refAttention(refLayerNorm(x, b * t, d, arr(p.ln1.gamma), arr(p.ln1.beta)), b, t, d, heads, p.attn);
  const h = x.map((v, i) => v + a[i]);
  const n = refLayerNorm(h, b * t, d, arr(p.ln2.gamma), arr(p.ln2.beta));
  const f = refLinear(n, b * t, d, 4 * d, arr(p.mlp.fc.w), arr(p.mlp.fc.b)).map(refGelu);
  const m = refLinear(f, b * t, 4 * d, d, arr(p.mlp.proj.w), arr(p.mlp.proj.b));
  return h.map((v, i) => v + m[i]);
}

function refGpt(ids: number[][], p: GptParams, o: { dModel: number; heads: number; vocab: number }): Arr {
  const b = ids.length;
  const t = ids[0].length;
  const d = o.dModel;
  const wte = arr(p.wte);
  const wpe = arr(p.wpe);
  let h: Arr = new Float64Array(b * t * d);
  for (let n = 0; n < b; n++)
    for (let i = 0; i < t; i++)
      for (let c = 0; c < d; c++) h[(n * t + i) * d + c] = wte[ids[n][i] * d + c] + wpe[i * d + c];
  for (const block of p.blocks) h = refBlock(h, b, t, d, o.heads, block);
  const f = refLayerNorm(h, b * t, d, arr(p.lnF.gamma), arr(p.lnF.beta));
  if (p.head) return refLinear(f, b * t, d, o.vocab, arr(p.head.w), arr(p.head.b));
  const out = new Float64Array(b * t * o.vocab);
  for (let r = 0; r < b * t; r++)
    for (let v = 0; v < o.vocab; v++) {
      let s = 0;
      for (let c = 0; c < d; c++) s += f[r * d + c] * wte[v * d + c];
      out[r * o.vocab + v] = s;
    }
  return out;
}

/** Biases and norm params moved off their init values, so the checks see them at work. */
function perturb(params: Params, rng: Rng): Params {
  for (const t of Object.values(params)) {
    const v = t.data();
    for (let i = 0; i < v.length; i++) v[i] += rng.normal() * 0.3;
  }
  return params;
}

const close = (got: ArrayLike<number>, want: ArrayLike<number>, tol: number) => {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= tol * (1 + Math.abs(want[i])))) {
      throw new Error(`element ${i}: got ${got[i]}, want ${want[i]}`);
    }
  }
};

describe("causalSelfAttention", () => {
  it("matches the float64 reference and its gradients match finite differences", () => {
    const rng = new Rng(1);
    const [b, t, d, heads] = [2, 3, 4, 2];
    const flat = perturb(flatten(initAttention(rng, d, { dtype: "f64" }) as unknown as Nested), rng);
    for (const t of Object.values(flat)) {
      const v = t.data();
      for (let i = 0; i < v.length; i++) v[i] *= 10; // scores of order 1, so softmax is not flat
    }
    const x = randTensor(rng, [b, t, d]);
    const w = randTensor(rng, [b, t, d]);
    scope(() => {
      const y = causalSelfAttention(unflatten(flat) as unknown as AttentionParams, x, { heads });
      expect(y.shape).toEqual([b, t, d]);
      close(y.toArray() as ArrayLike<number>, refAttention(arr(x), b, t, d, heads, unflatten(flat) as never), 1e-12);
    });
    // the ×10 weights make the loss larger, so finite differences carry more rounding error
    const tol = { h: 1e-5, atol: 1e-7 };
    gradCheck(
      { ...flat, x },
      (p) => {
        const { x: xp, ...rest } = p;
        return weighted(causalSelfAttention(unflatten(rest) as unknown as AttentionParams, xp, { heads }), w);
      },
      tol,
    );
  });

  it("is causal: a later token changes no earlier output", () => {
    const rng = new Rng(2);
    const p = initAttention(rng, 8, { dtype: "f64" });
    const x = randTensor(rng, [1, 5, 8]);
    const x2 = tensor(x.toArray() as number[], [1, 5, 8], { dtype: "f64" });
    for (let c = 0; c < 8; c++) x2.data()[4 * 8 + c] += 1;
    scope(() => {
      const a = causalSelfAttention(p, x, { heads: 2 }).toArray() as number[];
      const b = causalSelfAttention(p, x2, { heads: 2 }).toArray() as number[];
      expect(b.slice(0, 32)).toEqual(a.slice(0, 32));
      expect(b.slice(32)).not.toEqual(a.slice(32));
    });
  });

  it("with f16 weights keeps the scores in f32: scores past f16's range give finite, right outputs", () => {
    const rng = new Rng(3);
    const [t, d] = [4, 8];
    const p = initAttention(rng, d, { dtype: "f64" });
    // Inputs and the query/key weights are exact in f16, and q·kᵀ/√4 reaches ~1e5 (f16's max
    // is 65504) while q and k themselves stay far inside f16's range.
    const x = tensor(
      Float64Array.from({ length: t * d }, (_, i) => 1 + ((i * 5) % 8) / 8),
      [1, t, d],
      { dtype: "f64" },
    );
    const qkv = p.qkv.w.data();
    for (let r = 0; r < d; r++) for (let c = 0; c < 2 * d; c++) qkv[r * 3 * d + c] = 20 + ((r + c) % 5);
    const want = refAttention(arr(x), 1, t, d, 2, p);
    scope(() => {
      const half: AttentionParams = {
        qkv: { w: cast(cast(p.qkv.w, "f32"), "f16"), b: cast(p.qkv.b, "f32") },
        proj: { w: cast(cast(p.proj.w, "f32"), "f16"), b: cast(p.proj.b, "f32") },
      };
      const x32 = cast(x, "f32");
      const q = refLinear(arr(x), t, d, 3 * d, arr(p.qkv.w), arr(p.qkv.b));
      let maxScore = 0;
      for (let i = 0; i < t; i++)
        for (let j = 0; j <= i; j++) {
          let dot = 0;
          for (let c = 0; c < 4; c++) dot += q[i * 3 * d + c] * q[j * 3 * d + d + c];
          maxScore = Math.max(maxScore, Math.abs(dot / Math.sqrt(4)));
        }
      expect(maxScore).toBeGreaterThan(65504); // head 0's scores alone overflow f16
      const y = causalSelfAttention(half, x32, { heads: 2 });
      expect(y.dtype).toBe("f32");
      const got = y.toArray() as number[];
      expect(got.every(Number.isFinite)).toBe(true);
      // f16 rounding of weights and inputs: compare loosely against the f64 reference
      const scale = Math.max(...Array.from(want, Math.abs));
      for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(0.05 * scale);
    });
  });

  it("rejects a width not divisible by heads, a wrong input rank and a bad dropout, naming the values", () => {
    const p = initAttention(new Rng(0), 6);
    const x = tensor(new Float32Array(12), [1, 2, 6]);
    expect(() => causalSelfAttention(p, x, { heads: 4 })).toThrow(/dModel 6 is not divisible by heads 4/);
    expect(() => causalSelfAttention(p, tensor(new Float32Array(6), [1, 6]), { heads: 2 })).toThrow(
      /x must be \[batch, t, dModel\], got shape \[1, 6\]/,
    );
    expect(() => causalSelfAttention(p, x, { heads: 2, dropout: 0.1, train: true })).toThrow(/needs opts.rng/);
    expect(() => causalSelfAttention(p, x, { heads: 2, dropout: 1 })).toThrow(/dropout must be a probability/);
  });
});

describe("transformerBlock", () => {
  it("matches the float64 reference and its gradients match finite differences", () => {
    const rng = new Rng(4);
    const [b, t, d, heads] = [2, 3, 4, 2];
    const flat = perturb(flatten(initTransformerBlock(rng, d, { dtype: "f64" }) as unknown as Nested), rng);
    const x = randTensor(rng, [b, t, d]);
    const w = randTensor(rng, [b, t, d]);
    scope(() => {
      const p = unflatten(flat) as unknown as BlockParams;
      const y = transformerBlock(p, x, { heads });
      close(y.toArray() as ArrayLike<number>, refBlock(arr(x), b, t, d, heads, p), 1e-12);
    });
    gradCheck({ ...flat, x }, (p) => {
      const { x: xp, ...rest } = p;
      return weighted(transformerBlock(unflatten(rest) as unknown as BlockParams, xp, { heads }), w);
    });
  });

  it("applies dropout only in training mode", () => {
    const rng = new Rng(5);
    const p = initTransformerBlock(rng, 8);
    const x = randTensor(rng, [2, 3, 8], "f32");
    scope(() => {
      const a = transformerBlock(p, x, { heads: 2, dropout: 0.5 }).toArray();
      const b = transformerBlock(p, x, { heads: 2, dropout: 0.5 }).toArray();
      const c = transformerBlock(p, x, { heads: 2, dropout: 0.5, train: true, rng: new Rng(9) }).toArray();
      expect(b).toEqual(a);
      expect(c).not.toEqual(a);
    });
  });
});

describe("gpt", () => {
  const o = { vocab: 5, context: 4, dModel: 4, heads: 2, layers: 2 };
  const ids = [
    [0, 3, 1, 4],
    [2, 2, 0, 1],
  ];

  for (const tiedHead of [true, false]) {
    it(`${tiedHead ? "tied" : "untied"} head: logits [b, t, vocab] match the float64 reference`, () => {
      const model = gpt({ ...o, tiedHead, dtype: "f64" });
      const rng = new Rng(6);
      const params = model.init(rng);
      perturb(flatten(params as unknown as Nested), rng);
      scope(() => {
        const y = model.apply(params, tensor(Int32Array.from(ids.flat()), [2, 4], { dtype: "i32" }));
        expect(y.shape).toEqual([2, 4, 5]);
        close(y.toArray() as ArrayLike<number>, refGpt(ids, params, o), 1e-12);
        // a shorter sequence uses the first rows of the position table
        const short = model.apply(params, tensor(Int32Array.from([0, 3]), [1, 2], { dtype: "i32" }));
        close(short.toArray() as ArrayLike<number>, refGpt([[0, 3]], params, o), 1e-12);
      });
    });
  }

  it("gradients of a cross-entropy through the whole model match finite differences", () => {
    const model = gpt({ ...o, layers: 1, tiedHead: true, dtype: "f64" });
    const rng = new Rng(7);
    const flat = perturb(flatten(model.init(rng) as unknown as Nested), rng);
    const x = tensor(Int32Array.from(ids.flat()), [2, 4], { dtype: "i32" });
    const w = randTensor(rng, [2, 4, 5]);
    gradCheck(flat, (p) => weighted(model.apply(unflatten(p) as never, x), w));
  });

  it("rejects a sequence longer than the context, ids out of the vocabulary and bad options, naming the values", () => {
    const model = gpt(o);
    const params = model.init(new Rng(0));
    const long = tensor(new Int32Array(5), [1, 5], { dtype: "i32" });
    expect(() => model.apply(params, long)).toThrow(/sequence length 5 .* longer than the context 4/);
    const bad = tensor(Int32Array.from([1, 7]), [1, 2], { dtype: "i32" });
    expect(() => model.apply(params, bad)).toThrow(/token id 7 at \[0, 1\] is outside the vocabulary \[0, 5\)/);
    const neg = tensor(Int32Array.from([-1]), [1, 1], { dtype: "i32" });
    expect(() => model.apply(params, neg)).toThrow(/token id -1 at \[0, 0\]/);
    expect(() => model.apply(params, tensor(new Float32Array(2), [1, 2]))).toThrow(/i32 token ids \[batch, t\]/);
    expect(() => gpt({ ...o, dModel: 6, heads: 4 })).toThrow(/gpt: dModel 6 is not divisible by heads 4/);
    expect(() => gpt({ ...o, layers: 0 })).toThrow(/option layers must be a positive integer, got 0/);
    expect(() => gpt({ ...o, context: 2.5 })).toThrow(/option context must be a positive integer, got 2.5/);
    expect(() => gpt({ ...o, head: 1 } as never)).toThrow(/unknown option head/);
    expect(() => model.apply({ ...params, blocks: [] }, long)).toThrow(/params.blocks must hold 2 blocks, got 0/);
    expect(() =>
      model.apply(params, tensor(new Int32Array(2), [1, 2], { dtype: "i32" }), { train: true }),
    ).not.toThrow();
    const dropping = gpt({ ...o, dropout: 0.1 });
    const ok = tensor(Int32Array.from([1, 2]), [1, 2], { dtype: "i32" });
    expect(() => dropping.apply(params, ok, { train: true })).toThrow(
      /gpt.apply: dropout 0.1 in training mode needs opts.rng/,
    );
  });
});
