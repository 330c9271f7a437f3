import type { HalfDType } from "../core/castInto.ts";
import { checkOptions } from "../core/options.ts";
import type { Step, StepLike } from "../step/contract.ts";
import { transform } from "../step/transform.ts";
import { castParams } from "./castParams.ts";
import { computeCopies } from "./computeCopies.ts";
import { gradsInF32 } from "./gradDTypes.ts";
import { lossScaling } from "./lossScaling.ts";
import { type CastPolicy, checkPrecision, halfDTypeOf, type MixedPrecision, mixedPolicy } from "./policy.ts";
import type { LossScaler } from "./scaler.ts";
import { resolveScaler, type ScalerOption } from "./scalerOption.ts";

export interface AmpOptions {
  precision: MixedPrecision;
  /**
   * 16-mixed only: torch GradScaler options (initScale, growthFactor, backoffFactor,
   * growthInterval) or a scaler value (torchScaler(), deepspeedScaler(), staticScaler(),
   * noScaler() for none). Default: torchScaler() with torch's defaults.
   */
  scaler?: ScalerOption;
}

/**
 * Automatic mixed precision (Lightning's "16-mixed" / "bf16-mixed"). The params `train` holds
 * are f32 (the masters, the optimizer's; init casts other float leaves to f32); each step
 * computes with half copies of the f32 leaves of two or more dimensions (the weights; biases and
 * norm gains stay f32), cast from the masters for the step and freed after it. Ops with a half
 * operand round their f32 operands to it and compute in half with f32 accumulation (see
 * ops/linear.ts); the grads come back f32.
 *
 * 16-mixed scales the loss: the scaler's state is under the key "amp" in the step state, the
 * inner step runs with ctx.lossScale = its scale, and the grads are unscaled (inv =
 * f32(1/f64(scale)), fused with the finite check), checked on every rank (ctx.comm), skipped on
 * overflow (out.skip), and the scale adjusted; out.metrics.lossScale is the scale the step used.
 * bf16 needs no scaler (it has f32's exponent range) and refuses one, as Lightning does.
 */
export function withAMP<B>(step: StepLike<B>, opts: AmpOptions): Step<B> {
  if (opts === null || typeof opts !== "object") {
    throw new TypeError(
      `plait: withAMP: options must be an object like { precision: "16-mixed" }, got ${String(opts)}`,
    );
  }
  checkOptions("withAMP", opts, ["precision", "scaler"]);
  const precision = checkPrecision("withAMP", opts.precision, ["16-mixed", "bf16-mixed"] as const);
  const half = halfDTypeOf(precision);
  if (half === "bf16" && opts.scaler !== undefined) {
    throw new TypeError(
      `plait: withAMP: bf16-mixed takes no loss scaler (bf16 has f32's exponent range; Lightning rejects one too), got scaler ${JSON.stringify(opts.scaler)}`,
    );
  }
  const scaler = half === "f16" ? resolveScaler("withAMP", opts.scaler) : undefined;
  return halfCompute(step, { op: "withAMP", key: "amp", half, policy: mixedPolicy, scaler });
}

/**
 * The engine of withAMP and of withPrecision's master weights: f32 masters held by train (init
 * casts to f32), half compute copies for the leaves `policy` picks, each step's grads in f32,
 * and loss scaling when a scaler other than noScaler() is given.
 */
export function halfCompute<B>(
  step: StepLike<B>,
  o: { op: string; key: string; half: HalfDType; policy: CastPolicy; scaler?: LossScaler },
): Step<B> {
  const ls = o.scaler && o.scaler.kind !== "none" ? lossScaling(o.op, o.key, o.scaler) : undefined;
  return transform(step, {
    name: o.op,
    key: ls?.key,
    initState: ls?.initState,
    init: (params, _ctx, inner) => castParams(params, "f32", inner),
    enter(params, batch, ctx) {
      const copies = computeCopies(o.op, params, o.half, o.policy);
      const inner = { ...ctx, computeDType: o.half };
      return { params: copies.tree, batch, ctx: ls ? ls.enter(inner) : inner, release: copies.release };
    },
    update: (out, ctx) => (ls ? ls.update(out, ctx) : gradsInF32(out)),
  });
}
