// Launchers: re-run a script in N ranks (launch), or run a module's function in N ranks (spawn).
export type { RankContext } from "./context.ts";
export { type Devices, MAX_DEVICES } from "./devices.ts";
export { type ProcessWorld, processWorld } from "./external.ts";
export { type LaunchContext, type LaunchOptions, launch } from "./launch.ts";
export { type SpawnOptions, spawn } from "./spawn.ts";
export { liveWorkers } from "./world.ts";
