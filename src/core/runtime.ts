import { availableParallelism } from "node:os";
import { Arena } from "./arena.ts";
import { SharedHeap } from "./heap.ts";
import { instantiateKernels } from "./instance.js";
import type { KernelInstance, KernelModules } from "./instance-types.ts";
import { chooseVariant, compileKernels, type KernelVariant, readEnv } from "./kernels.ts";
import * as layout from "./layout.ts";
import { checkOptions } from "./options.ts";
import { Pool } from "./pool.ts";

export interface RuntimeOptions {
  /** Kernel threads, the calling thread included. Default: PLAIT_THREADS, else one per core. */
  threads?: number;
  /** Highest address the heap may reach, in bytes (≤ 4 GiB). Default: 4 GiB. */
  memoryLimit?: number;
  /**
   * Anomaly mode, for debugging: ops throw at the first inf or NaN they are given (and losses
   * at a non-finite result), naming the op and the argument. Off by default: non-finite values
   * flow through to the loss scaler. Unlike the other options it may be switched at any time.
   */
  detectAnomaly?: boolean;
  /**
   * The system BLAS that the differentiable matmul and linear use for f32 and f64: "auto" (the
   * default: the first one found, else the WASM kernels), "off" (always the WASM kernels), or a
   * library's path or soname (that one, or an error). Default: PLAIT_BLAS, else "auto". Like
   * detectAnomaly, it may be changed at any time; it applies from the next product.
   */
  blas?: string;
}

/** Everything one thread needs to run kernels: the memory, its arena, its kernel instances. */
export interface Runtime {
  readonly memory: WebAssembly.Memory;
  readonly variant: KernelVariant;
  readonly modules: KernelModules;
  readonly arena: Arena;
  readonly heap: SharedHeap;
  readonly k: KernelInstance;
  readonly pool: Pool;
  readonly threads: number;
}

const RUNTIME_OPTIONS = ["threads", "memoryLimit", "detectAnomaly", "blas"] as const;
/** Options that may change after the runtime started. */
const LIVE_OPTIONS: readonly string[] = ["detectAnomaly", "blas"];

let options: RuntimeOptions = {};
let current: Runtime | undefined;

function positiveInt(value: unknown, what: string): number {
  const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1) {
    throw new RangeError(`plait: ${what} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** Sets runtime options; only before the first tensor or kernel call (detectAnomaly and blas: at any time). */
export function configure(opts: RuntimeOptions): void {
  const o = checkOptions("configure()", opts, RUNTIME_OPTIONS);
  if (o.detectAnomaly !== undefined && typeof o.detectAnomaly !== "boolean") {
    throw new TypeError(
      `plait: configure({ detectAnomaly }) must be true or false, got ${JSON.stringify(o.detectAnomaly)}`,
    );
  }
  if (o.blas !== undefined && (typeof o.blas !== "string" || o.blas.trim() === "")) {
    throw new TypeError(
      `plait: configure({ blas }) must be "auto", "off" or a library path, got ${JSON.stringify(o.blas)}`,
    );
  }
  if (o.threads !== undefined) positiveInt(o.threads, "configure({ threads })");
  if (o.memoryLimit !== undefined) {
    const max = layout.MAXIMUM_PAGES * layout.PAGE_BYTES;
    if (!Number.isInteger(o.memoryLimit) || o.memoryLimit <= layout.HEAP_BASE || o.memoryLimit > max) {
      throw new RangeError(
        `plait: configure({ memoryLimit }) must be an integer in (${layout.HEAP_BASE}, ${max}], got ${o.memoryLimit}`,
      );
    }
  }
  if (current && Object.keys(o).some((k) => !LIVE_OPTIONS.includes(k))) {
    throw new Error("plait: configure() must be called before the first tensor or kernel call");
  }
  options = { ...options, ...o };
}

/** configure({ blas }), if given (ffi/blas.ts reads it; PLAIT_BLAS is the fallback). */
export const configuredBlas = (): string | undefined => options.blas;

/** Whether anomaly mode is on (configure({ detectAnomaly: true })). */
export const detectingAnomalies = (): boolean => options.detectAnomaly === true;

function defaultThreads(): number {
  const env = readEnv("PLAIT_THREADS");
  if (env !== undefined && env !== "") return positiveInt(env, "PLAIT_THREADS");
  return availableParallelism();
}

/**
 * What another thread of this process needs to join the same runtime (same memory, same kernel
 * modules): structured-cloneable, so it travels in a worker's `workerData`.
 */
export interface RuntimeHandle {
  readonly memory: WebAssembly.Memory;
  readonly variant: KernelVariant;
  readonly modules: KernelModules;
  readonly memoryLimit: number;
}

/** Whether this thread's runtime exists yet (a tensor was made or a kernel called). */
export function runtimeStarted(): boolean {
  return current !== undefined;
}

/** The calling thread's runtime, created on first use. */
export function runtime(): Runtime {
  if (current) return current;
  const variant = chooseVariant();
  const memory = new WebAssembly.Memory({
    initial: layout.INITIAL_PAGES,
    maximum: layout.MAXIMUM_PAGES,
    shared: true,
  });
  const memoryLimit = options.memoryLimit ?? layout.MAXIMUM_PAGES * layout.PAGE_BYTES;
  return start(
    { memory, variant, modules: compileKernels(variant), memoryLimit },
    options.threads ?? defaultThreads(),
    -1,
  );
}

/** This thread's handle to pass to threads that should share its memory and kernels. */
export function runtimeHandle(): RuntimeHandle {
  const { memory, variant, modules, heap } = runtime();
  return { memory, variant, modules, memoryLimit: heap.limit };
}

/**
 * Makes this (worker) thread's runtime use another thread's memory and kernel modules, with its
 * own arena and a kernel pool of `threads` threads. Call before any tensor is made here.
 * `parent` is the stack slot of the thread that started this one (runtime().k.stackSlot there):
 * that thread gives this one's slot and memory back once it is gone (releaseThread).
 */
export function attachRuntime(handle: RuntimeHandle, threads: number, parent = -1): Runtime {
  if (current) throw new Error("plait: attachRuntime() must run before this thread's first tensor or kernel call");
  return start(handle, positiveInt(threads, "attachRuntime(threads)"), parent);
}

function start({ memory, variant, modules, memoryLimit }: RuntimeHandle, threads: number, parent: number): Runtime {
  const k = instantiateKernels(memory, modules, layout, parent);
  const heap = new SharedHeap(memory, memoryLimit, k.stackSlot);
  const arena = new Arena(heap);
  const pool = new Pool(memory, modules, arena, k as any, k.stackSlot, threads);
  current = { memory, variant, modules, arena, heap, k, pool, threads };
  return current;
}
