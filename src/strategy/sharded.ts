import type { Comm } from "../comm/types.ts";
import { isCuda } from "../core/device.ts";
import type { DType } from "../core/dtype.ts";
import { keep } from "../core/scope.ts";
import { type Shape, shapeStr, Tensor } from "../core/tensor.ts";
import {
  fromSkeleton,
  leafPaths,
  type Skeleton,
  skeletonOf,
  type Tree,
  treeFlatten,
  treeLeaves,
} from "../core/tree.ts";
import type { LossScaling } from "../precision/lossScaling.ts";
import { type Ctx, type Init, type InitCtx, type Step, type StepLike, stateOf, withState } from "../step/contract.ts";
import { transform } from "../step/transform.ts";
import { castAnywhere, tensorLike } from "./device.ts";
import { type FlatLayout, flatLayout, flatten, shardOf, unflattenInto } from "./flat.ts";
import { enterStrategy } from "./nesting.ts";
import { syncParams } from "./syncParams.ts";

/** What `train` holds under withZeRO / withFSDP: this rank's shard of each unit's flattened params. */
export type ShardedParams = { shards: Tensor[] };

export interface ShardingOptions {
  /** The transform's name, for errors and ctx.distributedBy. */
  op: string;
  /** The key of its state (the layout) in the step state. */
  key: string;
  /** 1: grads all-reduced; 2: reduce-scattered; 3: also the full params gathered for each step and freed after. */
  stage: 1 | 2 | 3;
  /** The unit a leaf (by its path, "params.layers[0].w") belongs to: each unit is flattened and sharded on its own. */
  unitOf: (path: string) => string;
  /** Gather the params in this dtype, and run the step on them (FSDP's param_dtype); default the shards'. */
  gatherDType?: DType;
  /** Loss scaling of the inner step (FSDP under f16). */
  scaling?: LossScaling;
}

/**
 * How the params lie in the shards: the tree's structure and shapes, and each unit's leaves and
 * flat layout. Plain JSON-able data, held in the step state (so a checkpoint carries it).
 */
export interface Layout {
  readonly skeleton: Skeleton;
  readonly shapes: readonly Shape[];
  readonly worldSize: number;
  readonly units: readonly { readonly indices: readonly number[]; readonly flat: FlatLayout }[];
}

/** A sharding strategy's state: the layout, and the gathered params held through an accumulation window. */
interface ShardingState {
  readonly layout: Layout;
  readonly window?: Tensor[];
}

/**
 * The engine of withZeRO and withFSDP. The params are grouped into units, each flattened into a
 * vector padded to a multiple of the world size, and `train` holds only this rank's contiguous
 * shard of each (the init makes them, after checking every rank's params agree and broadcasting
 * rank 0's), so an ordinary optimizer keeps state for the shards alone and updates them alone:
 * sharded optimizer state and master params without an optimizer wrapper. Each step:
 * - the full params are all-gathered (one allGather per unit) before the inner step and freed
 *   after it (stages 1 and 2 keep them, in the state, through an accumulation window);
 * - the inner step's gradients are flattened per unit and averaged over ranks (stage 1:
 *   allReduce, keeping this rank's shard; stages 2 and 3: reduceScatter), and returned as the
 *   shards' gradients with `shardedGrads`, so withGradClip outside takes the global norm.
 * Accumulating and skipped outputs pass through: under withAccumulation the reduction happens
 * once per window at every stage. The update is elementwise on the same averaged values as
 * withDDP's, so the params are DDP's.
 */
export function shardedStep<B>(step: StepLike<B>, o: ShardingOptions): Step<B> {
  /** New full-params tensors in `dtype`, all-gathered from the shards (cast first where the dtypes differ). */
  const gatherFull = async (l: Layout, shards: Tensor[], comm: Comm, dtype: DType): Promise<Tensor[]> => {
    const leaves = l.shapes.map((s) => tensorLike(shards[0], s, dtype)); // strategy/device.ts: on the shards' device
    try {
      for (const [u, unit] of l.units.entries()) {
        const src = dtype !== shards[u].dtype ? castAnywhere(shards[u], dtype) : shards[u];
        try {
          const all = await comm.allGather(src);
          unflattenInto(
            all,
            unit.indices.map((i) => leaves[i]),
          );
          all.dispose();
        } finally {
          if (src !== shards[u]) src.dispose();
        }
      }
      return leaves;
    } catch (e) {
      for (const t of leaves) t.dispose();
      throw e;
    }
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

  return transform(step, {
    name: o.op,
    key: o.key,
    async init(params: Tree, ctx: InitCtx, inner: (params: Tree) => Promise<Init>): Promise<Init> {
      const done = await inner(params);
      const full = done.params;
      const l = layoutOf(o, full, ctx.worldSize);
      await syncParams(o.op, full, ctx.comm);
      const leaves = treeFlatten(full).leaves;
      const shards = l.units.map((unit) => {
        const flat = flatten(
          unit.flat,
          unit.indices.map((i) => leaves[i]),
          leaves[0].dtype,
        );
        try {
          return shardOf(unit.flat, flat, ctx.rank);
        } finally {
          flat.dispose();
        }
      });
      // full copies an inner init made (a cast) are not held by anyone now; the caller's stay
      const given = new Set(treeLeaves(params));
      for (const t of leaves) if (!given.has(t)) t.dispose();
      const mine: Record<string, unknown> = { [o.key]: { layout: l } };
      if (o.scaling) mine[o.scaling.key] = o.scaling.initState();
      for (const k of Object.keys(mine)) {
        if (k in done.state)
          throw new Error(`plait: ${o.op}: state key "${k}" is already used by a transform inside it`);
      }
      return { params: { shards } satisfies ShardedParams, state: { ...done.state, ...mine } };
    },
    async run(params, batch, ctx, inner) {
      const c = enterStrategy(o.op, ctx);
      const st = stateOf<ShardingState>(ctx, o.key);
      const l = checkLayout(o, st?.layout, ctx.worldSize);
      const shards = shardsOf(o.op, params, l, ctx.computeDType);
      // stages 1 and 2 keep the gathered params through an accumulation window (the shards only change at its end)
      const full = st?.window ?? (await gatherFull(l, shards, ctx.comm, o.gatherDType ?? shards[0].dtype));
      let hold = false;
      try {
        const computeCtx = o.gatherDType ? { ...c, computeDType: o.gatherDType } : c;
        const out = await inner.run(
          fromSkeleton(l.skeleton, full),
          batch,
          o.scaling ? o.scaling.enter(computeCtx) : computeCtx,
        );
        if (out.accumulating && o.stage < 3) {
          hold = true;
          for (const t of full) keep(t);
          return withState(out, o.key, { layout: l, window: full } satisfies ShardingState);
        }
        const ended = st?.window ? withState(out, o.key, { layout: l } satisfies ShardingState) : out;
        if (ended.accumulating || ended.skip) return ended;
        const scaled = o.scaling ? await o.scaling.update(ended, ctx) : ended;
        if (scaled.skip) return scaled; // train frees the grads without applying them
        const grads: ShardedParams = { shards: await reduce(l, scaled.grads, ctx, shards[0].dtype) };
        return { ...scaled, grads, shardedGrads: true };
      } finally {
        if (!hold) for (const leaf of full) leaf.dispose();
      }
    },
    async gather(params, ctx) {
      const l = checkLayout(o, (ctx.state[o.key] as ShardingState | undefined)?.layout, ctx.worldSize);
      const shards = shardsOf(o.op, params, l, undefined);
      return fromSkeleton(l.skeleton, await gatherFull(l, shards, ctx.comm, shards[0].dtype)); // the masters' dtype
    },
  });
}

/** The units of `params` (in order of their first leaf) and each one's flat layout. */
function layoutOf(o: ShardingOptions, params: Tree, worldSize: number): Layout {
  const { leaves } = treeFlatten(params);
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
  return { skeleton: skeletonOf(params), shapes: leaves.map((t) => [...t.shape]), worldSize, units };
}

function checkLayout(o: ShardingOptions, layout: Layout | undefined, worldSize: number): Layout {
  const op = o.op;
  if (layout === undefined) {
    throw new Error(
      `plait: ${op}: ctx.state.${o.key}.layout is missing: start from trainer.init(params) (or trainer.restore), which shards the params`,
    );
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
    shards.every((t, u) => (t instanceof Tensor || isCuda(t)) && t.size === sizes[u] && t.dtype === shards[0].dtype);
  if (!ok) {
    throw new TypeError(
      `plait: ${op}: the params must be this rank's shards as trainer.init makes them ({ shards: [${sizes.map((n) => `[${n}]`).join(", ")}] }, one dtype)`,
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
