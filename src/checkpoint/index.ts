export { type CheckpointState, load, save } from "./checkpoint.ts";
export { readSafetensors, writeSafetensors } from "./safetensors.ts";
