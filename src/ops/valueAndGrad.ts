import { isHalf } from "../core/castInto.ts";
import { anyCuda, type CudaTensor } from "../core/device.ts";
import type { DType } from "../core/dtype.ts";
import { full } from "../core/fill.ts";
import { scope } from "../core/scope.ts";
import { shapeStr, Tensor, zeros } from "../core/tensor.ts";
import { type Tree, treeFlatten, treeUnflatten } from "../core/tree.ts";
import { deviceValueAndGrad } from "./deviceGrad.ts";
import { gradDTypeOf, Tape, withTape } from "./tape.ts";

/** What an outer transform hands the step (the rest of the step contract's Ctx is ignored here). */
export interface GradContext {
  /** The backward pass starts from this instead of 1, so the grads come out multiplied by it. */
  lossScale?: number;
  /**
   * The dtype the params arrive in; default: their own (all leaves must agree). Under f16 or
   * bf16 (mixed precision) leaves may also be f32: the ones the precision policy keeps in f32.
   */
  computeDType?: DType;
}

export interface LossAndGrads {
  /** The loss as computed (not multiplied by lossScale). */
  loss: number;
  /**
   * d(loss · lossScale)/d(params), with the params' structure; new tensors the caller owns.
   * A leaf's gradient has the leaf's dtype, except f16/bf16 leaves, whose gradients are f32.
   */
  grads: Tree;
  /** The factor the grads are multiplied by: lossScale (the step contract's StepOut.gradScale). */
  gradScale: number;
}

/**
 * Turns `lossFn(params, batch) → scalar tensor` into a step that also returns the gradient of
 * the loss with respect to every leaf of `params`. Ops record on a tape while `lossFn` runs;
 * the reverse pass runs right after, and every intermediate is freed before the step returns.
 * Params on a CUDA device (CudaTensors, all on one) run the device tape (ops/deviceGrad.ts):
 * lossFn's ops run on the device, and the grads are CudaTensors there.
 * A leaf the loss does not depend on gets a zero gradient. Calls nest, but an inner call's
 * result is a constant to the outer one (no gradients of gradients).
 */
export function valueAndGrad<B>(
  lossFn: (params: Tree, batch: B) => Tensor | CudaTensor,
): (params: Tree, batch: B, ctx?: GradContext) => LossAndGrads {
  return (params, batch, ctx = {}) => {
    const lossScale = ctx.lossScale ?? 1;
    if (typeof lossScale !== "number" || !Number.isFinite(lossScale) || lossScale <= 0) {
      throw new RangeError(`plait: valueAndGrad: ctx.lossScale must be a finite number > 0, got ${lossScale}`);
    }
    const { leaves, def } = treeFlatten(params);
    if (anyCuda(leaves)) return deviceValueAndGrad(lossFn, params, batch, ctx, lossScale); // ops/deviceGrad.ts
    const computeDType = ctx.computeDType ?? leaves[0]?.dtype ?? "f32";
    checkLeaves(leaves, computeDType, ctx.computeDType !== undefined);
    return scope(() => {
      const tape = new Tape(computeDType);
      for (const p of leaves) tape.watch(p);
      const loss = withTape(tape, () => lossFn(params, batch));
      checkLoss(loss);
      const value = Number(loss.data()[0]);
      tape.backward(loss, full(loss.shape, lossScale, { dtype: loss.dtype }));
      const grads = leaves.map((p) => tape.gradOf(p) ?? zeros(p.shape, { dtype: gradDTypeOf(p) }));
      return { loss: value, grads: treeUnflatten(def, grads), gradScale: lossScale };
    });
  };
}

function checkLeaves(leaves: readonly Tensor[], dtype: DType, fromCtx: boolean): void {
  const seen = new Set<Tensor>();
  const mixed = isHalf(dtype);
  for (const [i, p] of leaves.entries()) {
    if (p.dtype !== dtype && !(mixed && p.dtype === "f32")) {
      const why = fromCtx ? "ctx.computeDType" : "the first leaf";
      throw new TypeError(
        `plait: valueAndGrad: params leaf ${i} (${p.describe()}) has dtype ${p.dtype}, expected ${dtype} like ${why}${mixed ? " (or f32)" : ""}`,
      );
    }
    if (seen.has(p)) throw new TypeError(`plait: valueAndGrad: params leaf ${i} is the same tensor as an earlier leaf`);
    seen.add(p);
  }
}

function checkLoss(loss: unknown): asserts loss is Tensor {
  if (!(loss instanceof Tensor)) {
    throw new TypeError(
      `plait: valueAndGrad: lossFn must return a Tensor, got ${loss === null ? "null" : typeof loss}`,
    );
  }
  if (loss.size !== 1 || (loss.dtype !== "f32" && loss.dtype !== "f64")) {
    throw new TypeError(
      `plait: valueAndGrad: lossFn must return a scalar f32 or f64 tensor, got ${loss.dtype}${shapeStr(loss.shape)}`,
    );
  }
}
