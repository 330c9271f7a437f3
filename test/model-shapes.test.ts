// Shapes are checked where params meet a model: mlp.apply checks every leaf against its sizes
// (and the dtypes for consistency), checkTreeLike compares a tree with a template naming the
// first differing path, and load({ template }) refuses a checkpoint of another model before
// allocating any tensor.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { load, save } from "../src/checkpoint/index.ts";
import { checkTreeLike, TensorSpec } from "../src/core/treeCheck.ts";
import { Rng } from "../src/data/rng.ts";
import {
  cast,
  type MlpParams,
  mlp,
  mse,
  runtime,
  scope,
  sgd,
  type Tensor,
  type Tree,
  tensor,
  train,
  valueAndGrad,
  withAMP,
  withPrecision,
  zeros,
} from "../src/index.ts";

const root = mkdtempSync(join(tmpdir(), "plait-model-shapes-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, `ckpt${dirs++}`);

const x = () => tensor(new Float32Array(8).fill(0.5), [2, 4]);
const castLeaves = (p: MlpParams, w: "f32" | "f64" | "f16" | "bf16", b = w): MlpParams => ({
  layers: p.layers.map((l) => ({ w: cast(l.w, w), b: cast(l.b, b) })),
});

describe("mlp.apply checks its params against its sizes", () => {
  it("refuses the params of mlp([4, 16, 2]) for mlp([4, 32, 2]), naming the leaf, both shapes and the model", () => {
    scope(() => {
      const small = mlp([4, 16, 2]).init(new Rng(1));
      expect(() => mlp([4, 32, 2]).apply(small, x())).toThrow(
        "plait: mlp.apply: params.layers[0].w is f32[4, 16], expected f32[4, 32] for mlp([4, 32, 2])",
      );
      // the first layer agrees, the last one does not
      expect(() => mlp([4, 16, 3]).apply(small, x())).toThrow(
        "plait: mlp.apply: params.layers[1].w is f32[16, 2], expected f32[16, 3] for mlp([4, 16, 3])",
      );
      const p = mlp([4, 16, 2]).init(new Rng(1));
      const wrongBias = { layers: [{ w: p.layers[0].w, b: zeros([17]) }, p.layers[1]] };
      expect(() => mlp([4, 16, 2]).apply(wrongBias, x())).toThrow(
        "plait: mlp.apply: params.layers[0].b is f32[17], expected f32[16] for mlp([4, 16, 2])",
      );
      expect(() => mlp([4, 16, 2, 2]).apply(small, x())).toThrow(
        /params must be \{ layers: \[3 × \{ w, b \}\] \} as init\(\) returns for mlp\(\[4, 16, 2, 2\]\), got 2 layers/,
      );
    });
  });

  it("refuses missing, extra and non-tensor leaves", () => {
    scope(() => {
      const model = mlp([4, 16, 2]);
      const p = model.init(new Rng(2));
      const [l0, l1] = p.layers;
      expect(() => model.apply({ layers: [{ w: l0.w }, l1] } as any, x())).toThrow(
        "plait: mlp.apply: params.layers[0].b is undefined, expected f32[16] for mlp([4, 16, 2])",
      );
      expect(() => model.apply({ layers: [l0, { ...l1, scale: l1.b }] } as any, x())).toThrow(
        "plait: mlp.apply: params.layers[1].scale is not a param of mlp([4, 16, 2])",
      );
      expect(() => model.apply({ layers: [l0, l1], extra: l1.b } as any, x())).toThrow(
        /plait: mlp.apply: params.extra is not a param of mlp\(\[4, 16, 2\]\)/,
      );
      expect(() => model.apply({ layers: [l0, { w: [1, 2], b: l1.b }] } as any, x())).toThrow(
        "plait: mlp.apply: params.layers[1].w is an array, expected f32[16, 2] for mlp([4, 16, 2])",
      );
      expect(() => model.apply({ layers: [l0, l1] }, tensor(new Float32Array(4), [4]))).toThrow(
        "plait: mlp.apply: argument x must be [batch, 4], got shape [4]",
      );
    });
  });

  it("takes the dtypes precision transforms hold (f64, f16/bf16 with f32 biases, all half) and refuses mixed layers", () => {
    scope(() => {
      const model = mlp([4, 16, 2]);
      const p = model.init(new Rng(3));
      const ref = model.apply(p, x()).toArray();
      const f64 = model.apply(castLeaves(p, "f64"), cast(x(), "f64")).toArray();
      for (const [i, v] of ref.entries()) expect(f64[i]).toBeCloseTo(v, 5);
      for (const half of ["f16", "bf16"] as const) {
        expect(model.apply(castLeaves(p, half, "f32"), x()).shape).toEqual([2, 2]); // mixed: 1-D leaves stay f32
        expect(model.apply(castLeaves(p, half), x()).shape).toEqual([2, 2]); // true half
      }
      const [l0, l1] = p.layers;
      expect(() => model.apply({ layers: [l0, { w: cast(l1.w, "f64"), b: l1.b }] }, x())).toThrow(
        "plait: mlp.apply: params.layers[1].w is f64[16, 2], expected f32[16, 2] for mlp([4, 16, 2])",
      );
      expect(() => model.apply({ layers: [{ w: l0.w, b: cast(l0.b, "f64") }, l1] }, x())).toThrow(
        "plait: mlp.apply: params.layers[0].b is f64[16], expected f32[16] for mlp([4, 16, 2])",
      );
      // an f32 bias beside an f16 weight is mixed precision; an f16 bias beside an f32 weight is not
      expect(() => model.apply({ layers: [{ w: l0.w, b: cast(l0.b, "f16") }, l1] }, x())).toThrow(
        "plait: mlp.apply: params.layers[0].b is f16[16], expected f32[16] for mlp([4, 16, 2])",
      );
      const half = castLeaves(p, "f16", "f32");
      expect(() =>
        model.apply({ layers: [half.layers[0], { w: half.layers[1].w, b: cast(l1.b, "bf16") }] }, x()),
      ).toThrow("plait: mlp.apply: params.layers[1].b is bf16[2], expected f32[2] for mlp([4, 16, 2])");
      const ints = { layers: [{ w: zeros([4, 16], { dtype: "i32" }), b: l0.b }, l1] };
      expect(() => model.apply(ints, x())).toThrow(
        "plait: mlp.apply: params.layers[0].w is i32[4, 16], expected a float tensor [4, 16] (f32, f64, f16, bf16) for mlp([4, 16, 2])",
      );
    });
  });
});

describe("mlp.apply under every precision", () => {
  it("takes the params each precision transform hands it (a step trains to a finite loss)", async () => {
    const model = mlp([4, 16, 2]);
    const loss = valueAndGrad((p: Tree, b: { x: Tensor; y: Tensor }) => mse(model.apply(p, b.x), b.y));
    const steps = [
      withAMP(loss, { precision: "16-mixed" }),
      withAMP(loss, { precision: "bf16-mixed" }),
      ...(["64-true", "32-true", "16-true", "bf16-true"] as const).map((p) => withPrecision(loss, p)),
    ];
    for (const step of steps) {
      const t = train(step, sgd({ lr: 0.1 }));
      const state = await t.init(model.init(new Rng(1)) as unknown as Tree);
      const out = await scope(async () => {
        const b = { x: tensor(new Float32Array(32).fill(0.5), [8, 4]), y: tensor(new Float32Array(16), [8, 2]) };
        return (await t(state, b)).out;
      });
      expect(Number.isFinite(out.loss)).toBe(true);
    }
  });
});

describe("checkTreeLike", () => {
  const t = (shape: number[], dtype: "f32" | "f16" = "f32") => zeros(shape, { dtype });

  it("accepts a tree of the template's structure, dtypes and shapes, with tensors or TensorSpecs", () => {
    scope(() => {
      const template = { layers: [{ w: t([4, 16]), b: t([16]) }], step: [t([])] };
      checkTreeLike("op", "params", { step: [t([])], layers: [{ b: t([16]), w: t([4, 16]) }] }, template);
      checkTreeLike(
        "op",
        "params",
        { layers: [{ w: new TensorSpec("f32", [4, 16]), b: new TensorSpec("f32", [16]) }], step: [t([])] },
        template,
      );
    });
  });

  it("names the first differing path in treeFlatten's order, what was expected and what came", () => {
    scope(() => {
      const template = {
        layers: [
          { w: t([4, 32]), b: t([32]) },
          { w: t([32, 2]), b: t([2]) },
        ],
      };
      const check = (actual: unknown) => () => checkTreeLike("restore", "params", actual, template);
      const ok = () => ({ w: t([4, 32]), b: t([32]) });
      const last = () => ({ w: t([32, 2]), b: t([2]) });
      expect(check({ layers: [{ w: t([4, 16]), b: t([16]) }, last()] })).toThrow(
        // b sorts before w
        new TypeError("plait: restore: params.layers[0].b is f32[16], expected f32[32]"),
      );
      expect(check({ layers: [{ w: t([4, 32], "f16"), b: t([32]) }, last()] })).toThrow(
        "plait: restore: params.layers[0].w is f16[4, 32], expected f32[4, 32]",
      );
      expect(check({ layers: [ok()] })).toThrow(
        "plait: restore: params.layers[1] is missing (params.layers has 1 entries, expected 2)",
      );
      expect(check({ layers: [ok(), last(), ok()] })).toThrow(
        "plait: restore: params.layers[2] is not in the template (params.layers has 3 entries, expected 2)",
      );
      expect(check({ layers: [{ w: t([4, 32]) }, last()] })).toThrow(
        "plait: restore: params.layers[0].b is missing (expected a tensor f32[32])",
      );
      expect(check({ layers: [{ ...ok(), g: t([32]) }, last()] })).toThrow(
        "plait: restore: params.layers[0].g is not in the template (expected keys b, w)",
      );
      expect(check({ layers: [{ w: 3, b: t([32]) }, last()] })).toThrow(
        "plait: restore: params.layers[0].w is number 3, expected a tensor f32[4, 32]",
      );
      expect(check({ layers: { 0: ok() } })).toThrow(
        "plait: restore: params.layers is an object, expected an array of 2",
      );
      expect(check(t([2]))).toThrow("plait: restore: params is a tensor f32[2], expected an object with keys layers");
      expect(() => checkTreeLike("op", "params", { w: t([2]) }, { w: 3 } as any)).toThrow(
        "plait: op: the template's params.w is number 3, not a tensor, array or plain object",
      );
    });
  });
});

describe("load({ template })", () => {
  it("loads a checkpoint that matches the template, and refuses one of another model before allocating", () => {
    const dir = freshDir();
    const small = mlp([4, 16, 2]);
    scope(() => save(dir, { params: small.init(new Rng(4)), step: 7 }));
    scope(() => {
      const loaded = load(dir, { template: small.init(new Rng(5)) });
      expect(loaded.step).toBe(7);
      expect((loaded.params as MlpParams).layers[0].w.shape).toEqual([4, 16]);
    });
    const template = mlp([4, 32, 2]).init(new Rng(6)) as unknown as Tree;
    const deep = mlp([4, 16, 2, 2]).init(new Rng(7)) as unknown as Tree;
    const before = runtime().arena.bytesInUse;
    expect(() => load(dir, { template })).toThrow(
      new TypeError(`plait: load: ${dir}: params.layers[0].b is f32[16], expected f32[32]`),
    );
    expect(runtime().arena.bytesInUse).toBe(before);
    // another structure: a deeper model's template
    expect(() => load(dir, { template: deep })).toThrow(
      `params.layers[2] is missing (params.layers has 2 entries, expected 3)`,
    );
    expect(runtime().arena.bytesInUse).toBe(before);
    for (const l of [...(template as any).layers, ...(deep as any).layers])
      for (const v of Object.values(l)) (v as Tensor).dispose();
  });

  it("checks the template's dtypes, and validates its options", () => {
    const dir = freshDir();
    const model = mlp([4, 16, 2]);
    scope(() => save(dir, { params: model.init(new Rng(8)) }));
    scope(() => {
      const p = model.init(new Rng(9));
      const f64 = { layers: p.layers.map((l) => ({ w: cast(l.w, "f64"), b: cast(l.b, "f64") })) };
      expect(() => load(dir, { template: f64 })).toThrow(/params.layers\[0\].b is f32\[16\], expected f64\[16\]/);
      expect(() => load(dir, { templat: p } as any)).toThrow(/plait: load: unknown option templat; known: template/);
      expect(() => load(dir, "x" as any)).toThrow(/plait: load: options must be an object, got string/);
      expect(load(dir).params).toBeDefined(); // no template: as before
    });
  });
});
