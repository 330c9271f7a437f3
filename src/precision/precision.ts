import { cast } from "../core/cast.ts";
import { isFloat } from "../core/dtype.ts";
import { checkOptions } from "../core/options.ts";
import { Tensor } from "../core/tensor.ts";
import { treeFlatten } from "../core/tree.ts";
import type { Step, StepLike } from "../step/contract.ts";
import { transform } from "../step/transform.ts";
import { halfCompute, withAMP } from "./amp.ts";
import { castParams } from "./castParams.ts";
import { gradsLikeParams } from "./gradDTypes.ts";
import { lossScaling } from "./lossScaling.ts";
import { checkPrecision, halfDTypeOf, PRECISIONS, type Precision, wholePolicy } from "./policy.ts";
import { resolveScaler, type ScalerOption } from "./scalerOption.ts";

export interface PrecisionOptions {
  /** The precision, when the options are given as one object: withPrecision(step, { precision: "16-true" }). */
  precision?: Precision;
  /**
   * 16-true / bf16-true only (Apex O2-like): train holds f32 master params, updated by the
   * optimizer; the step computes with half copies of all of them, and the grads come back f32.
   */
  masterWeights?: boolean;
  /** 16-mixed and 16-true only: a loss scaler, as withAMP's (16-true has none unless given). */
  scaler?: ScalerOption;
}

const OP = "withPrecision";

/**
 * Runs `step` in one of Lightning's precisions, given as a string (`withPrecision(step,
 * "bf16-true", { masterWeights: true })`) or in the options (`withPrecision(step, { precision:
 * "bf16-true", masterWeights: true })`, the form withAMP takes). The params train holds take the
 * precision's dtype (the init casts them):
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
export function withPrecision<B>(
  step: StepLike<B>,
  precision: Precision | PrecisionOptions,
  opts?: PrecisionOptions,
): Step<B> {
  const o = optionsOf(precision, opts);
  const p = checkPrecision(OP, o.precision, PRECISIONS);
  const { masterWeights, scaler } = o;
  if (p === "16-mixed" || p === "bf16-mixed") {
    if (masterWeights !== undefined) {
      throw new TypeError(
        `plait: ${OP}: option masterWeights applies to "16-true" and "bf16-true"; "${p}" always keeps f32 master params`,
      );
    }
    return withAMP(step, scaler === undefined ? { precision: p } : { precision: p, scaler });
  }
  if (p === "32-true" || p === "64-true") {
    if (masterWeights !== undefined || scaler !== undefined) {
      const which = masterWeights !== undefined ? "masterWeights" : "scaler";
      throw new TypeError(`plait: ${OP}: option ${which} does not apply to "${p}"`);
    }
    return p === "32-true"
      ? transform(step, { name: OP, init: (params, _ctx, inner) => castParams(params, "f32", inner) })
      : inF64(step);
  }
  const dtype = halfDTypeOf(p);
  if (dtype === "bf16" && scaler !== undefined) {
    throw new TypeError(
      `plait: ${OP}: "bf16-true" takes no loss scaler (bf16 has f32's exponent range), got scaler ${JSON.stringify(scaler)}`,
    );
  }
  // A scaler of kind "none" means no loss scaling (torch's GradScaler(enabled=False)).
  const resolved = scaler === undefined ? undefined : resolveScaler(OP, scaler);
  if (masterWeights)
    return halfCompute(step, { op: OP, key: "precision", half: dtype, policy: wholePolicy, scaler: resolved });
  const ls = resolved && resolved.kind !== "none" ? lossScaling(OP, "precision", resolved) : undefined;
  return transform(step, {
    name: OP,
    key: ls?.key,
    initState: ls?.initState,
    init: (params, _ctx, inner) => castParams(params, dtype, inner),
    enter(params, batch, ctx) {
      for (const [i, leaf] of treeFlatten(params).leaves.entries()) {
        if (isFloat(leaf.dtype) && leaf.dtype !== dtype) {
          throw new TypeError(
            `plait: ${OP}: params leaf ${i} is ${leaf.describe()}, expected ${dtype} under "${p}" (its init casts the params: start from trainer.init)`,
          );
        }
      }
      const inner = { ...ctx, computeDType: dtype };
      return { params, batch, ctx: ls ? ls.enter(inner) : inner };
    },
    update: async (out, ctx, entered) => gradsLikeParams(ls ? await ls.update(out, ctx) : out, entered.params),
  });
}

/** The options of either call form, checked, with the precision in them. */
function optionsOf(precision: Precision | PrecisionOptions, opts: PrecisionOptions | undefined): PrecisionOptions {
  if (precision !== null && typeof precision === "object") {
    if (opts !== undefined) {
      throw new TypeError(
        `plait: ${OP}: give the options once: withPrecision(step, "16-true", { masterWeights }) or withPrecision(step, { precision: "16-true", masterWeights })`,
      );
    }
    checkOptions(OP, precision, ["precision", "masterWeights", "scaler"]);
    if (precision.precision === undefined) {
      throw new TypeError(`plait: ${OP}: option precision is missing; it is one of ${PRECISIONS.join(", ")}`);
    }
    return checkMasterWeights(precision);
  }
  return checkMasterWeights({ ...checkOptions(OP, opts, ["masterWeights", "scaler"]), precision });
}

function checkMasterWeights(o: PrecisionOptions): PrecisionOptions {
  if (o.masterWeights !== undefined && typeof o.masterWeights !== "boolean") {
    throw new TypeError(`plait: ${OP}: option masterWeights must be a boolean, got ${String(o.masterWeights)}`);
  }
  return o;
}

/** "64-true": f64 params (init), and the batch's float tensors cast to f64 for the step. */
function inF64<B>(step: StepLike<B>): Step<B> {
  return transform(step, {
    name: OP,
    init: (params, _ctx, inner) => castParams(params, "f64", inner),
    enter(params, batch, ctx) {
      const made: Tensor[] = [];
      const wide = toF64(batch, made) as B;
      return {
        params,
        batch: wide,
        ctx: { ...ctx, computeDType: "f64" },
        release: () => {
          for (const t of made) t.dispose();
        },
      };
    },
  });
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
