import { runtime } from "../core/runtime.ts";

/** The calling thread's AssemblyScript kernel instance (a cached object after the first call). */
export const as = (): Record<string, (...args: number[]) => any> => runtime().k.as;
