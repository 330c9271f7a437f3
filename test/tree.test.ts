import { describe, expect, it } from "vitest";
import { scope, tensor, treeFlatten, treeLeaves, treeMap, treeUnflatten } from "../src/index.ts";

describe("pytrees", () => {
  it("flattens in a fixed order and rebuilds the same structure", () =>
    scope(() => {
      const a = tensor([1]);
      const b = tensor([2]);
      const c = tensor([3]);
      const tree = { z: [a, { y: b }], a: c };
      const { leaves, def } = treeFlatten(tree);
      expect(leaves).toEqual([c, a, b]); // object keys sorted, arrays in order
      expect(treeUnflatten(def, leaves)).toEqual({ a: c, z: [a, { y: b }] });
      expect(def.key).toBe(treeFlatten({ a: a, z: [b, { y: c }] }).def.key);
      expect(def.key).not.toBe(treeFlatten({ a: a, z: [b, c] }).def.key);
    }));

  it("maps over several trees of one structure and names a mismatch", () =>
    scope(() => {
      const p = { w: tensor([1, 2]), b: [tensor([3])] };
      const g = { w: tensor([10, 20]), b: [tensor([30])] };
      const sum = treeMap((x, y) => tensor(x.toArray().map((v, i) => v + y.toArray()[i])), p, g);
      expect(treeLeaves(sum).map((t) => t.toArray())).toEqual([[33], [11, 22]]);
      expect(() => treeMap((x) => x, p, { w: g.w })).toThrow(/tree 1 has structure .* tree 0 has/);
    }));

  it("rejects leaves that are not tensors, naming the path", () => {
    expect(() => treeFlatten({ a: [1] } as any)).toThrow(/tree\.a\[0\] is not a tensor/);
  });

  it("checks the leaf count when unflattening", () =>
    scope(() => {
      const { def } = treeFlatten([tensor([1]), tensor([2])]);
      expect(() => treeUnflatten(def, [tensor([1])])).toThrow(/ran out of leaves at tree\[1\]/);
      expect(() => treeUnflatten(def, [tensor([1]), tensor([1]), tensor([1])])).toThrow(/more leaves/);
    }));
});
