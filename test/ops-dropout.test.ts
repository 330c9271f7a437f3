import { describe, expect, it } from "vitest";
import { Rng } from "../src/data/rng.ts";
import { scope, tensor } from "../src/index.ts";
import { dropout } from "../src/ops/dropout.ts";
import { mse } from "../src/ops/loss.ts";
import { valueAndGrad } from "../src/ops/valueAndGrad.ts";
import { gradCheck, randn, randTensor, TAIL_SIZES } from "./ops-gradcheck.ts";

/** The mask hash of kernels/as/dropout.ts, written out in JavaScript: fmix32(i · 0x9E3779B9 + seed). */
function keeps(i: number, seed: number, threshold: number): boolean {
  let h = (Math.imul(i, 0x9e3779b9) + seed) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0 >= threshold;
}

/** The seed dropout draws from an rng: the first uniform, scaled to 32 bits. */
const seedOf = (rngSeed: number) => Math.floor(new Rng(rngSeed).uniform() * 2 ** 32) >>> 0;

describe("dropout", () => {
  const rng = new Rng(8);

  for (const dtype of ["f32", "f64"] as const) {
    it(`zeroes exactly the hashed positions and scales the rest, at every tail (${dtype})`, () => {
      for (const n of [...TAIL_SIZES, 300_000]) {
        for (const p of [0, 0.1, 0.5, 0.9]) {
          scope(() => {
            const x = tensor(randn(rng, n), [n], { dtype });
            const xv = x.toArray();
            const y = dropout(x, p, new Rng(11)).toArray();
            const seed = seedOf(11);
            const threshold = Math.min(Math.round(p * 2 ** 32), 2 ** 32 - 1);
            const scale = 1 / (1 - p);
            const round = dtype === "f32" ? Math.fround : (v: number) => v;
            let kept = 0;
            for (let i = 0; i < n; i++) {
              const k = keeps(i, seed, threshold);
              kept += k ? 1 : 0;
              const want = k ? round(xv[i] * round(scale)) : 0;
              if (y[i] !== want) throw new Error(`n ${n}, p ${p}, element ${i}: got ${y[i]}, expected ${want}`);
            }
            // the hash is a fair coin: at n = 300,000 the kept fraction is within 5 sigma of 1 − p
            if (n === 300_000)
              expect(Math.abs(kept / n - (1 - p))).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n) + 1e-12);
          });
        }
      }
    });
  }

  it("draws a new mask from each rng state and the same mask from the same state", () => {
    scope(() => {
      const x = tensor(new Float32Array(64).fill(1), [64]);
      const r = new Rng(3);
      const a = dropout(x, 0.5, r).toArray();
      const b = dropout(x, 0.5, r).toArray();
      expect(a).not.toEqual(b);
      expect(dropout(x, 0.5, new Rng(3)).toArray()).toEqual(a);
      const special = tensor([Number.POSITIVE_INFINITY, -0, 1e-45, 5], [4]);
      expect(dropout(special, 0, new Rng(1)).toArray()).toEqual(special.toArray());
    });
  });

  it("backward applies the forward's mask (finite differences in f64)", () => {
    scope(() => {
      const target = randTensor(rng, [4, 5]);
      gradCheck({ x: randTensor(rng, [4, 5]) }, (q) => mse(dropout(q.x, 0.4, new Rng(21)), target));
      const x = randTensor(rng, [40]);
      const { grads } = valueAndGrad((q: any) => mse(dropout(q.x, 0.4, new Rng(21)), x))(
        { x: randTensor(rng, [40]) },
        undefined,
      );
      const y = dropout(x, 0.4, new Rng(21)).toArray();
      const g = (grads as any).x.toArray();
      for (let i = 0; i < 40; i++) expect(g[i] === 0).toBe(y[i] === 0 && x.toArray()[i] !== 0);
    });
  });

  it("rejects probabilities outside [0, 1) and a missing rng", () => {
    scope(() => {
      const x = tensor([1, 2], [2]);
      for (const p of [-0.1, 1, Number.NaN]) {
        expect(() => dropout(x, p, new Rng(1))).toThrow(/dropout: argument p must be a probability in \[0, 1\)/);
      }
      expect(() => dropout(x, 0.5, {} as any)).toThrow(/dropout: argument rng must have a uniform\(\) method/);
    });
  });
});
