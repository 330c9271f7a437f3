export { type CheckpointState, type LoadOptions, load, save } from "./checkpoint.ts";
export { readSafetensors, writeSafetensors } from "./safetensors.ts";
