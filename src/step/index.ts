export { type AccumulationState, withAccumulation } from "./accumulate.ts";
export { BUFFERS_KEY, valueAndGradWithBuffers } from "./buffers.ts";
export { type ClipOptions, withGradClip } from "./clip.ts";
export {
  type Ctx,
  type Init,
  type InitCtx,
  type Step,
  type StepFn,
  type StepLike,
  type StepOut,
  stateOf,
  withState,
} from "./contract.ts";
export { type Trainer, type TrainOptions, type TrainState, train } from "./train.ts";
export { type Entered, type TransformSpec, toStep, transform } from "./transform.ts";
