import { describe, expect, it } from "vitest";
import { Rng } from "../src/data/rng.ts";
import { scope, type Tensor, tensor } from "../src/index.ts";
import { add, div, mul, sub } from "../src/ops/arith.ts";
import { sum } from "../src/ops/reduce.ts";
import { gradCheck, randn, randTensor } from "./ops-gradcheck.ts";

const OPS = {
  add: [add, (x: number, y: number) => x + y],
  sub: [sub, (x: number, y: number) => x - y],
  mul: [mul, (x: number, y: number) => x * y],
  div: [div, (x: number, y: number) => x / y],
} as const;

/** Shape pairs that broadcast (and their result), beyond the same-shape and bias-row cases. */
const PAIRS: [number[], number[], number[]][] = [
  [
    [2, 3],
    [2, 1],
    [2, 3],
  ],
  [
    [2, 1, 4],
    [3, 1],
    [2, 3, 4],
  ],
  [[1], [2, 3], [2, 3]],
  [
    [4, 1],
    [1, 5],
    [4, 5],
  ],
  [[], [2, 3], [2, 3]],
  [[3], [2, 3], [2, 3]], // the row on the left
  [
    [2, 3, 4],
    [3, 4],
    [2, 3, 4],
  ],
  [
    [2, 0, 3],
    [1, 3],
    [2, 0, 3],
  ],
];

/** x[i] for the flat index i of the broadcast shape `to` (numpy rules), in float64. */
function at(x: number[], shape: number[], to: number[], i: number): number {
  let off = 0;
  let stride = 1;
  for (let ax = to.length - 1, rem = i; ax >= 0; ax--) {
    const idx = rem % to[ax];
    rem = Math.floor(rem / to[ax]);
    const s = ax - (to.length - shape.length);
    if (s >= 0) {
      if (shape[s] !== 1) off += idx * stride;
      stride *= shape[s];
    }
  }
  return x[off];
}

describe("numpy broadcasting in add, sub, mul, div", () => {
  const rng = new Rng(41);

  for (const dtype of ["f32", "f64"] as const) {
    it(`each element is op of the broadcast operands, rounded once (${dtype})`, () => {
      for (const [name, [f, ref]] of Object.entries(OPS)) {
        for (const [sa, sb, so] of PAIRS) {
          scope(() => {
            const a = randTensor(rng, sa, dtype);
            const b = randTensor(rng, sb, dtype);
            const y = (f as (a: Tensor, b: Tensor) => Tensor)(a, b);
            expect(y.shape, `${name} ${sa} ${sb}`).toEqual(so);
            const av = a.toArray();
            const bv = b.toArray();
            const got = y.toArray();
            const round = dtype === "f32" ? Math.fround : (v: number) => v;
            for (let i = 0; i < got.length; i++) {
              const want = round(ref(at(av, sa, so, i), at(bv, sb, so, i)));
              if (got[i] !== want) throw new Error(`${name} ${sa} × ${sb} [${i}]: got ${got[i]}, expected ${want}`);
            }
          });
        }
      }
    });
  }

  it("gradients sum over the broadcast axes: finite differences in f64", () => {
    for (const [name, [f]] of Object.entries(OPS)) {
      for (const [sa, sb, so] of PAIRS) {
        if (so.includes(0)) continue;
        scope(() => {
          const w = randTensor(rng, so);
          const b = randTensor(rng, sb);
          if (name === "div") b.data().set(b.toArray().map((v) => Math.sign(v) * (1 + Math.abs(v))));
          gradCheck({ a: randTensor(rng, sa), b }, (p) =>
            sum(mul((f as (a: Tensor, b: Tensor) => Tensor)(p.a, p.b), w)),
          );
        });
      }
    }
  });

  it("a constant broadcast operand: only the param gets a gradient, and its shape", () =>
    scope(() => {
      const c = tensor(randn(rng, 3), [1, 3], { dtype: "f64" });
      gradCheck({ x: randTensor(rng, [4, 1]) }, (p) => sum(mul(div(p.x, c), sub(c, p.x))));
    }));

  it("refuses shapes that do not broadcast, naming the op, both shapes and the rule", () =>
    scope(() => {
      const a = tensor(new Float32Array(6), [2, 3]);
      expect(() => mul(a, tensor(new Float32Array(8), [2, 4]))).toThrow(
        "plait: mul: shapes do not broadcast: a [2, 3], b [2, 4] (axis -1 has 3 and 4; numpy rule: aligned at the last axis, each axis equal or 1)",
      );
      expect(() => div(tensor(new Float32Array(12), [3, 4, 1]), a)).toThrow(
        "plait: div: shapes do not broadcast: a [3, 4, 1], b [2, 3] (axis -2 has 4 and 2; numpy rule: aligned at the last axis, each axis equal or 1)",
      );
    }));
});
