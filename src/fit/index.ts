export { type ProgressMode, progressMode } from "./progress.ts";
export { type EpochRecord, type StepEvent, type TrainEpochsOptions, trainEpochs } from "./trainEpochs.ts";
