import type { Step } from "../step/contract.ts";
import { withParamDType } from "../step/paramDType.ts";
import { ComputeCopies } from "./computeCopies.ts";
import { gradsInF32 } from "./gradDTypes.ts";
import { withLossScaling } from "./lossScaling.ts";
import { checkPrecision, halfDTypeOf, type MixedPrecision, mixedPolicy } from "./policy.ts";
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
 * stay f32 (the masters, the optimizer's); each step computes with half copies of the f32 leaves
 * of two or more dimensions (the weights; biases and norm gains stay f32), cached per master and
 * recast in place every step. Ops with a half operand round their f32 operands to it and compute
 * in half with f32 accumulation (see ops/linear.ts); the grads come back f32.
 *
 * 16-mixed scales the loss: the scaler's state is under the key "amp" in the step state, the
 * inner step runs with ctx.lossScale = its scale, and the grads are unscaled (inv =
 * f32(1/f64(scale)), fused with the finite check), checked on every rank (ctx.comm), skipped on
 * overflow (out.skip), and the scale adjusted; out.metrics.lossScale is the scale the step used.
 * bf16 needs no scaler (it has f32's exponent range) and refuses one, as Lightning does.
 */
export function withAMP<B>(step: Step<B>, opts: AmpOptions): Step<B> {
  if (opts === null || typeof opts !== "object") {
    throw new TypeError(
      `plait: withAMP: options must be an object like { precision: "16-mixed" }, got ${String(opts)}`,
    );
  }
  const precision = checkPrecision("withAMP", opts.precision, ["16-mixed", "bf16-mixed"] as const);
  const half = halfDTypeOf(precision);
  if (half === "bf16" && opts.scaler !== undefined) {
    throw new TypeError(
      `plait: withAMP: bf16-mixed takes no loss scaler (bf16 has f32's exponent range; Lightning rejects one too), got scaler ${JSON.stringify(opts.scaler)}`,
    );
  }
  const copies = new ComputeCopies("withAMP", half, mixedPolicy);
  const compute: Step<B> = (params, batch, ctx) =>
    step(copies.refresh(params), batch, { ...ctx, computeDType: half, paramsCopiedBy: "withAMP" });
  const scaler = half === "f16" ? resolveScaler("withAMP", opts.scaler) : undefined;
  const scaled =
    scaler && scaler.kind !== "none" ? withLossScaling(compute, "withAMP", "amp", scaler) : gradsInF32(compute);
  return withParamDType(scaled, "f32");
}
