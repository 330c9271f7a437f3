import { cast } from "../core/cast.ts";
import { isFloat } from "../core/dtype.ts";
import { Tensor } from "../core/tensor.ts";
import { treeFlatten } from "../core/tree.ts";
import type { Step } from "../step/contract.ts";
import { withParamDType } from "../step/paramDType.ts";
import { withAMP } from "./amp.ts";
import { ComputeCopies } from "./computeCopies.ts";
import { gradsInF32, gradsLikeParams } from "./gradDTypes.ts";
import { withLossScaling } from "./lossScaling.ts";
import { checkPrecision, halfDTypeOf, PRECISIONS, type Precision, wholePolicy } from "./policy.ts";
import { resolveScaler, type ScalerOption } from "./scalerOption.ts";

export interface PrecisionOptions {
  /**
   * 16-true / bf16-true only (Apex O2-like): train holds f32 master params, updated by the
   * optimizer; the step computes with half copies of all of them, and the grads come back f32.
   */
  masterWeights?: boolean;
  /** 16-mixed and 16-true only: a loss scaler, as withAMP's (16-true has none unless given). */
  scaler?: ScalerOption;
}

/**
 * Runs `step` in one of Lightning's precisions. The params train holds take the precision's
 * dtype (train.init casts them: the step carries it as its paramDType):
 * - "32-true": f32, nothing else changes.
 * - "64-true": f64 params and f64 kernels end to end; float tensors in the batch are cast to
 *   f64 for the step (Lightning's convert_input).
 * - "16-mixed" / "bf16-mixed": withAMP (f32 masters, half compute).
 * - "16-true" / "bf16-true": the whole parameter set is f16/bf16, and so are the grads the step
 *   returns (computed in f32 by the backward, rounded to nearest even at the end); the
 *   optimizer keeps f32 moments and rounds each updated param back to half, so an update below
 *   half an ulp of its param is lost (the known behaviour of pure half training). With
 *   `masterWeights: true` train holds f32 masters instead, which keep those small updates.
 */
export function withPrecision<B>(step: Step<B>, precision: Precision, opts: PrecisionOptions = {}): Step<B> {
  const p = checkPrecision("withPrecision", precision, PRECISIONS);
  const { masterWeights, scaler } = checkOptions(opts);
  if (p === "16-mixed" || p === "bf16-mixed") {
    if (masterWeights !== undefined) {
      throw new TypeError(
        `plait: withPrecision: option masterWeights applies to "16-true" and "bf16-true"; "${p}" always keeps f32 master params`,
      );
    }
    return withAMP(step, { precision: p, scaler });
  }
  if (p === "32-true" || p === "64-true") {
    if (masterWeights !== undefined || scaler !== undefined) {
      const which = masterWeights !== undefined ? "masterWeights" : "scaler";
      throw new TypeError(`plait: withPrecision: option ${which} does not apply to "${p}"`);
    }
    return p === "32-true" ? withParamDType((ps, b, ctx) => step(ps, b, ctx), "f32") : inF64(step);
  }
  const dtype = halfDTypeOf(p);
  if (dtype === "bf16" && scaler !== undefined) {
    throw new TypeError(
      `plait: withPrecision: "bf16-true" takes no loss scaler (bf16 has f32's exponent range), got scaler ${JSON.stringify(scaler)}`,
    );
  }
  // A scaler of kind "none" means no loss scaling (torch's GradScaler(enabled=False)).
  const resolved = scaler === undefined ? undefined : resolveScaler("withPrecision", scaler);
  const scaled = <S>(s: Step<S>, otherwise: (s: Step<S>) => Step<S>) =>
    resolved && resolved.kind !== "none" ? withLossScaling(s, "withPrecision", "precision", resolved) : otherwise(s);
  if (masterWeights) {
    const copies = new ComputeCopies("withPrecision", dtype, wholePolicy);
    const compute: Step<B> = (params, batch, ctx) =>
      step(copies.refresh(params), batch, { ...ctx, computeDType: dtype, paramsCopiedBy: "withPrecision" });
    return withParamDType(scaled(compute, gradsInF32), "f32");
  }
  const inHalf: Step<B> = (params, batch, ctx) => {
    for (const [i, leaf] of treeFlatten(params).leaves.entries()) {
      if (isFloat(leaf.dtype) && leaf.dtype !== dtype) {
        throw new TypeError(
          `plait: withPrecision: params leaf ${i} is ${leaf.describe()}, expected ${dtype} under "${p}" (train.init casts params to a step's paramDType; a transform wrapping this step must pass it on with wrapStep)`,
        );
      }
    }
    return step(params, batch, { ...ctx, computeDType: dtype });
  };
  return withParamDType(gradsLikeParams(scaled(inHalf, (s) => s)), dtype);
}

function checkOptions(opts: PrecisionOptions): PrecisionOptions {
  if (opts === null || typeof opts !== "object") {
    throw new TypeError(`plait: withPrecision: options must be an object, got ${String(opts)}`);
  }
  const unknown = Object.keys(opts).filter((k) => k !== "masterWeights" && k !== "scaler");
  if (unknown.length > 0) {
    throw new TypeError(`plait: withPrecision: unknown options ${unknown.join(", ")}; it takes masterWeights, scaler`);
  }
  if (opts.masterWeights !== undefined && typeof opts.masterWeights !== "boolean") {
    throw new TypeError(
      `plait: withPrecision: option masterWeights must be a boolean, got ${String(opts.masterWeights)}`,
    );
  }
  return opts;
}

/** "64-true": f64 params (train.init), and the batch's float tensors cast to f64 for the step. */
function inF64<B>(step: Step<B>): Step<B> {
  return withParamDType(async (params, batch, ctx) => {
    const made: Tensor[] = [];
    try {
      return await step(params, toF64(batch, made) as B, { ...ctx, computeDType: "f64" });
    } finally {
      for (const t of made) t.dispose();
    }
  }, "f64");
}

/** `x` with every float tensor in it (through arrays and plain objects) cast to f64. */
function toF64(x: unknown, made: Tensor[]): unknown {
  if (x instanceof Tensor) {
    if (!isFloat(x.dtype) || x.dtype === "f64") return x;
    const t = cast(x, "f64");
    made.push(t);
    return t;
  }
  if (Array.isArray(x)) return x.map((v) => toF64(v, made));
  if (x !== null && typeof x === "object" && Object.getPrototypeOf(x) === Object.prototype) {
    return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, toF64(v, made)]));
  }
  return x;
}
