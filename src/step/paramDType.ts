import type { DType } from "../core/dtype.ts";
import type { Step } from "./contract.ts";

// The dtype `train` holds a step's params in, when the step asks for one: withPrecision sets
// it ("bf16-true" keeps the whole parameter set in bf16, "64-true" in f64). It is a property of
// the step function, so a transform that wraps a step passes it on by returning its new step
// through `wrapStep` (what functools.wraps does for a Python function's metadata).

type WithParamDType = { readonly paramDType?: DType };

/** The dtype `step` wants its params held in, or undefined (train keeps them as given). */
export function paramDTypeOf(step: Step<never>): DType | undefined {
  return (step as WithParamDType).paramDType;
}

/** `step` marked to have its params held in `dtype`. */
export function withParamDType<B>(step: Step<B>, dtype: DType): Step<B> {
  return Object.assign(step, { paramDType: dtype });
}

/** `outer` (a transform's step around `inner`) carrying inner's param dtype, if it has one. */
export function wrapStep<B>(inner: Step<B>, outer: Step<B>): Step<B> {
  const dtype = paramDTypeOf(inner);
  return dtype === undefined ? outer : withParamDType(outer, dtype);
}
