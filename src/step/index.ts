export { type Ctx, type Step, type StepOut, stateOf, type Transform, withState } from "./contract.ts";
export { paramDTypeOf, withParamDType, wrapStep } from "./paramDType.ts";
export { type Trainer, type TrainOptions, type TrainState, train } from "./train.ts";
