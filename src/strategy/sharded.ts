import type { Comm } from "../comm/types.ts";
import { cast } from "../core/cast.ts";
import type { DType } from "../core/dtype.ts";
import { keep } from "../core/scope.ts";
import { type Shape, shapeStr, Tensor } from "../core/tensor.ts";
import { type Tree, type TreeDef, treeFlatten, treeUnflatten } from "../core/tree.ts";
import type { Ctx, Step } from "../step/contract.ts";
import { wrapStep } from "../step/paramDType.ts";
import { type FlatLayout, flatLayout, flatten, shardOf, unflattenInto } from "./flat.ts";
import { enterStrategy } from "./nesting.ts";
import { leafPaths } from "./paths.ts";
import { checkSameLayout, syncParams } from "./syncParams.ts";

/** What `train` holds under withZeRO / withFSDP: this rank's shard of each unit's flattened params. */
export type ShardedParams = { shards: Tensor[] };

/** A sharding strategy's step, with the two collectives that move params between full trees and shards. */
export interface ShardedStep<B> extends Step<B> {
  /**
   * Checks that every rank's params have the same structure, shapes and dtypes, broadcasts rank
   * 0's values, and returns this rank's shards (every rank calls it): pass them to train's init.
   */
  shard(params: Tree, comm: Comm): Promise<ShardedParams>;
  /**
   * Sets up the same layout as `shard` from `template`'s structure, shapes and dtypes alone (its
   * values are not read), checked equal on every rank, without making shards: for continuing
   * from a sharded checkpoint, where each rank loads the state it saved (every rank calls it).
   */
  resume(template: Tree, comm: Comm): Promise<void>;
  /** The full params in the shards' dtype, all-gathered from every rank's shards (every rank calls it); new tensors. */
  gather(params: Tree, comm: Comm): Promise<Tree>;
}

export interface ShardingOptions {
  /** The transform's name, for errors and ctx.distributedBy. */
  op: string;
  /** 1: grads all-reduced; 2: reduce-scattered; 3: also the full params gathered for each step and freed after. */
  stage: 1 | 2 | 3;
  /** The unit a leaf (by its path, "params.layers[0].w") belongs to: each unit is flattened and sharded on its own. */
  unitOf: (path: string) => string;
  /** Gather the params in this dtype, and run the step on them (FSDP's param_dtype); default the shards'. */
  gatherDType?: DType;
}

interface Layout {
  def: TreeDef;
  shapes: Shape[];
  worldSize: number;
  units: { indices: number[]; flat: FlatLayout }[];
}

interface Full {
  leaves: Tensor[];
  tree: Tree;
  /** Whether the leaves hold the shards' current values. */
  current: boolean;
}

/** Frees a replica's leaves once the params it mirrors are garbage-collected. */
const releaseReplica = new FinalizationRegistry<Tensor[]>((leaves) => {
  for (const leaf of leaves) leaf.dispose();
});

/**
 * The engine of withZeRO and withFSDP. The params are grouped into units, each flattened into a
 * vector padded to a multiple of the world size, and `train` holds only this rank's contiguous
 * shard of each (`step.shard(params, comm)` makes them), so an ordinary optimizer keeps state for
 * the shards alone and updates them alone: sharded optimizer state and master params without an
 * optimizer wrapper. Each step:
 * - the full params: stages 1 and 2 keep a replica between steps, refreshed by one allGather per
 *   unit whenever the optimizer has updated the shards; stage 3 gathers them before the inner
 *   step and frees them after it;
 * - the inner step's gradients are flattened per unit and averaged over ranks (stage 1:
 *   allReduce, keeping this rank's shard; stages 2 and 3: reduceScatter), and returned as the
 *   shards' gradients with `shardedGrads`, so withGradClip outside takes the global norm.
 * Accumulating and skipped outputs pass through: under withAccumulation the reduction happens
 * once per window at every stage. The update is elementwise on the same averaged values as
 * withDDP's, so the params are DDP's.
 */
export function shardedStep<B>(step: Step<B>, o: ShardingOptions): ShardedStep<B> {
  let layout: Layout | undefined;
  const replicas = new WeakMap<object, Full>();

  const newFull = (l: Layout, dtype: DType): Full => {
    const leaves = l.shapes.map((s) => new Tensor(s, dtype));
    return { leaves, tree: treeUnflatten(l.def, leaves), current: false };
  };

  /** All-gathers the shards into `full`'s leaves, cast first to the leaves' dtype where it differs. */
  const fill = async (l: Layout, shards: Tensor[], comm: Comm, full: Full): Promise<Full> => {
    const dtype = full.leaves[0].dtype;
    for (const [u, unit] of l.units.entries()) {
      const src = dtype !== shards[u].dtype ? cast(shards[u], dtype) : shards[u];
      try {
        const all = await comm.allGather(src);
        unflattenInto(
          all,
          unit.indices.map((i) => full.leaves[i]),
        );
        all.dispose();
      } finally {
        if (src !== shards[u]) src.dispose();
      }
    }
    full.current = true;
    return full;
  };

  /** Stages 1 and 2: the replica of the full params, refreshed when the shards have changed. */
  const replicaOf = async (l: Layout, params: Tree, shards: Tensor[], comm: Comm): Promise<Full> => {
    let r = replicas.get(params);
    if (r === undefined) {
      r = newFull(l, o.gatherDType ?? shards[0].dtype);
      for (const leaf of r.leaves) keep(leaf);
      replicas.set(params, r);
      releaseReplica.register(params, r.leaves);
    }
    return r.current ? r : fill(l, shards, comm, r);
  };

  const reduce = async (l: Layout, grads: Tree, ctx: Ctx, dtype: DType): Promise<Tensor[]> => {
    const leaves = checkGrads(o.op, grads, l, dtype);
    const out: Tensor[] = [];
    try {
      for (const unit of l.units) {
        const flat = flatten(
          unit.flat,
          unit.indices.map((i) => leaves[i]),
          dtype,
        );
        try {
          out.push(
            o.stage === 1
              ? shardOf(unit.flat, await ctx.comm.allReduce(flat, "avg"), ctx.rank)
              : await ctx.comm.reduceScatter(flat, "avg"),
          );
        } finally {
          flat.dispose();
        }
      }
    } finally {
      for (const g of leaves) g.dispose();
    }
    return out;
  };

  const run: Step<B> = async (params, batch, ctx) => {
    const inner = enterStrategy(o.op, ctx);
    const l = checkLayout(o.op, layout, ctx.worldSize);
    const shards = shardsOf(o.op, params, l, ctx.computeDType);
    const full =
      o.stage === 3
        ? await fill(l, shards, ctx.comm, newFull(l, o.gatherDType ?? shards[0].dtype))
        : await replicaOf(l, params, shards, ctx.comm);
    try {
      const out = await step(full.tree, batch, inner);
      if (out.accumulating || out.skip) return out;
      full.current = false; // train applies the update to the shards next
      const grads: ShardedParams = { shards: await reduce(l, out.grads, ctx, shards[0].dtype) };
      return { ...out, grads, shardedGrads: true };
    } finally {
      if (o.stage === 3) for (const leaf of full.leaves) leaf.dispose();
    }
  };

  return Object.assign(wrapStep(step, run), {
    async shard(params: Tree, comm: Comm): Promise<ShardedParams> {
      const l = layoutOf(o, params, comm.worldSize);
      await syncParams(o.op, params, comm);
      const leaves = treeFlatten(params).leaves;
      const shards = l.units.map((unit) => {
        const flat = flatten(
          unit.flat,
          unit.indices.map((i) => leaves[i]),
          leaves[0].dtype,
        );
        try {
          return shardOf(unit.flat, flat, comm.rank);
        } finally {
          flat.dispose();
        }
      });
      layout = l;
      return { shards };
    },
    async resume(template: Tree, comm: Comm): Promise<void> {
      const l = layoutOf(o, template, comm.worldSize);
      await checkSameLayout(o.op, template, comm);
      layout = l;
    },
    async gather(params: Tree, comm: Comm): Promise<Tree> {
      const l = checkLayout(o.op, layout, comm.worldSize);
      const shards = shardsOf(o.op, params, l, undefined);
      return (await fill(l, shards, comm, newFull(l, shards[0].dtype))).tree; // the masters' dtype
    },
  });
}

/** The units of `params` (in order of their first leaf) and each one's flat layout. */
function layoutOf(o: ShardingOptions, params: Tree, worldSize: number): Layout {
  const { leaves, def } = treeFlatten(params);
  const paths = leafPaths(params);
  if (leaves.length === 0) throw new TypeError(`plait: ${o.op}: the params have no tensors to shard`);
  flatLayout(o.op, leaves, paths, worldSize); // one float dtype across all units
  const groups = new Map<string, number[]>();
  for (const [i, path] of paths.entries()) {
    const unit = o.unitOf(path);
    groups.set(unit, [...(groups.get(unit) ?? []), i]);
  }
  const units = [...groups.values()].map((indices) => ({
    indices,
    flat: flatLayout(
      o.op,
      indices.map((i) => leaves[i]),
      indices.map((i) => paths[i]),
      worldSize,
    ),
  }));
  return { def, shapes: leaves.map((t) => t.shape), worldSize, units };
}

function checkLayout(op: string, layout: Layout | undefined, worldSize: number): Layout {
  if (layout === undefined) {
    throw new Error(`plait: ${op}: no layout yet: call step.shard(params, comm) on every rank before the first step`);
  }
  if (layout.worldSize !== worldSize) {
    throw new RangeError(
      `plait: ${op}: the shards were made for a world of ${layout.worldSize}, this one has ${worldSize} ranks`,
    );
  }
  return layout;
}

/** The shard tensors in `params`, checked against the layout (and the compute dtype, when given). */
function shardsOf(op: string, params: Tree, l: Layout, computeDType: DType | undefined): Tensor[] {
  const shards = (params as Partial<ShardedParams>)?.shards;
  const sizes = l.units.map((u) => u.flat.shardSize);
  const ok =
    Array.isArray(shards) &&
    Object.keys(params).length === 1 &&
    shards.length === sizes.length &&
    shards.every((t, u) => t instanceof Tensor && t.size === sizes[u] && t.dtype === shards[0].dtype);
  if (!ok) {
    throw new TypeError(
      `plait: ${op}: the params must be this rank's shards as step.shard(params, comm) returns them ({ shards: [${sizes.map((n) => `[${n}]`).join(", ")}] }, one dtype): pass that to train's init`,
    );
  }
  if (computeDType !== undefined && computeDType !== shards[0].dtype) {
    throw new TypeError(
      `plait: ${op}: ctx.computeDType is ${computeDType} but the shards are ${shards[0].dtype}: a precision transform outside ${op} would see the flat shards, not the params; put it inside, as ${op}(withAMP(step))`,
    );
  }
  return shards;
}

/** The gradient leaves, checked to have the params' shapes and the shards' dtype. */
function checkGrads(op: string, grads: Tree, l: Layout, dtype: DType): Tensor[] {
  const leaves = treeFlatten(grads).leaves;
  const ok =
    leaves.length === l.shapes.length &&
    leaves.every((g, i) => g.dtype === dtype && shapeStr(g.shape) === shapeStr(l.shapes[i]));
  if (!ok) {
    throw new TypeError(
      `plait: ${op}: the inner step returned gradients ${leaves.map((g) => g.describe()).join(", ")}, expected ${l.shapes.map((s) => `${dtype}${shapeStr(s)}`).join(", ")} (the params' shapes, the shards' dtype)`,
    );
  }
  return leaves;
}
