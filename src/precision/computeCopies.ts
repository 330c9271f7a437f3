import { isFloat } from "../core/dtype.ts";
import { keep } from "../core/scope.ts";
import { Tensor } from "../core/tensor.ts";
import { type Tree, treeFlatten, treeUnflatten } from "../core/tree.ts";
import { castInto, type HalfDType } from "../ops/castInto.ts";
import type { CastPolicy } from "./policy.ts";

interface Cached {
  /** The master leaves the tree was built from (checked by identity each step). */
  leaves: Tensor[];
  tree: Tree;
  /** master → its half copy, for the leaves the policy casts. */
  pairs: [Tensor, Tensor][];
}

/** Frees a half copy once its master is garbage-collected. */
const release = new FinalizationRegistry<Tensor>((copy) => copy.dispose());

/**
 * The half compute copies of master params. Each master leaf the policy picks gets one copy,
 * made on first use and then recast in place from the master on every `refresh` (one pass over
 * the weights per step, no allocation); the other leaves are passed as they are. The tree of
 * copies is cached per params object too, so a step costs one identity check per leaf.
 */
export class ComputeCopies {
  private readonly copies = new WeakMap<Tensor, Tensor>();
  private readonly trees = new WeakMap<object, Cached>();

  constructor(
    private readonly op: string,
    readonly dtype: HalfDType,
    private readonly policy: CastPolicy,
  ) {}

  /** The params to compute with: `params` with the policy's leaves replaced by fresh half copies. */
  refresh(params: Tree): Tree {
    const cached = this.cachedFor(params);
    for (const [master, copy] of cached.pairs) castInto(master, copy);
    return cached.tree;
  }

  private cachedFor(params: Tree): Cached {
    const { leaves, def } = treeFlatten(params);
    const have = this.trees.get(params);
    if (have && have.leaves.length === leaves.length && have.leaves.every((l, i) => l === leaves[i])) return have;
    const pairs: [Tensor, Tensor][] = [];
    const compute = leaves.map((leaf, i) => {
      if (isFloat(leaf.dtype) && leaf.dtype !== "f32") {
        throw new TypeError(
          `plait: ${this.op}: params leaf ${i} is ${leaf.describe()}; the f32 master params must be f32 (train.init casts them when the step says so)`,
        );
      }
      if (!this.policy(leaf)) return leaf;
      const copy = this.copyOf(leaf);
      pairs.push([leaf, copy]);
      return copy;
    });
    const cached = { leaves, tree: treeUnflatten(def, compute), pairs };
    this.trees.set(params, cached);
    return cached;
  }

  private copyOf(master: Tensor): Tensor {
    let copy = this.copies.get(master);
    if (copy === undefined) {
      copy = keep(new Tensor(master.shape, this.dtype)); // outlives every scope: freed with its master
      this.copies.set(master, copy);
      release.register(master, copy);
    }
    return copy;
  }
}
