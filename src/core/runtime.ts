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
  /**
   * The same results, bit for bit, on Node, Deno and Bun and at any kernel thread count: the plain
   * SIMD128 kernels (no fused multiply-add), the WASM GEMM instead of a system BLAS, reductions
   * split into fixed chunks, and portable JavaScript math for the f64 ops and optimizer scalars.
   * Default: PLAIT_DETERMINISTIC (1/true/on or 0/false/off), else false. Fixed when the runtime
   * starts; PLAIT_SIMD=relaxed or an explicit BLAS library with it is an error.
   */
  deterministic?: boolean;
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
  /** Whether deterministic mode is on (configure({ deterministic }), PLAIT_DETERMINISTIC). */
  readonly deterministic: boolean;
}

const RUNTIME_OPTIONS = ["threads", "memoryLimit", "detectAnomaly", "blas", "deterministic"] as const;
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
  if (o.deterministic !== undefined && typeof o.deterministic !== "boolean") {
    throw new TypeError(
      `plait: configure({ deterministic }) must be true or false, got ${JSON.stringify(o.deterministic)}`,
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
  if (current && o.deterministic !== undefined && o.deterministic !== current.deterministic) {
    throw new Error(
      `plait: configure({ deterministic: ${o.deterministic} }) must be called before the first tensor or kernel call: the runtime already started with deterministic ${current.deterministic} (the ${current.variant} kernel build)`,
    );
  }
  const late = Object.keys(o).filter((k) => !LIVE_OPTIONS.includes(k) && k !== "deterministic");
  if (current && late.length > 0) {
    throw new Error("plait: configure() must be called before the first tensor or kernel call");
  }
  const deterministic = o.deterministic ?? (current ? current.deterministic : undefined) ?? envDeterministic();
  if (deterministic) checkBlasMode(o.blas ?? options.blas, o.deterministic !== undefined);
  options = { ...options, ...o };
}

/** PLAIT_DETERMINISTIC as a boolean (unset or empty: false). */
function envDeterministic(): boolean {
  const raw = readEnv("PLAIT_DETERMINISTIC")?.trim().toLowerCase();
  if (raw === undefined || raw === "" || ["0", "false", "off", "no"].includes(raw)) return false;
  if (["1", "true", "on", "yes"].includes(raw)) return true;
  throw new TypeError(
    `plait: PLAIT_DETERMINISTIC must be 1, true, on, 0, false or off, got ${JSON.stringify(readEnv("PLAIT_DETERMINISTIC"))}`,
  );
}

/**
 * Deterministic mode runs the WASM GEMM, never a system BLAS (OpenBLAS's results depend on the
 * CPU kernel it picks and its threads): a blas setting that names a library is an error naming
 * both settings. "auto" and "off" are fine (auto then means the WASM GEMM).
 */
function checkBlasMode(blas: string | undefined, fromOption: boolean): void {
  const value = blas ?? readEnv("PLAIT_BLAS");
  const v = value?.trim().toLowerCase() ?? "";
  if (["", "auto", "off", "0", "false", "none"].includes(v)) return;
  const det = fromOption
    ? "configure({ deterministic: true })"
    : "deterministic mode (PLAIT_DETERMINISTIC or configure)";
  const lib = blas !== undefined ? `configure({ blas: ${JSON.stringify(blas)} })` : `PLAIT_BLAS=${value}`;
  throw new Error(
    `plait: ${det} conflicts with ${lib}: deterministic results need the WASM GEMM, not a system BLAS; set blas to "auto" or "off", or turn deterministic off`,
  );
}

/**
 * Whether deterministic mode is on: the running runtime's setting, else what it would start with
 * (configure({ deterministic }), else PLAIT_DETERMINISTIC).
 */
export function deterministic(): boolean {
  return current ? current.deterministic : (options.deterministic ?? envDeterministic());
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
  readonly deterministic: boolean;
}

/** Whether this thread's runtime exists yet (a tensor was made or a kernel called). */
export function runtimeStarted(): boolean {
  return current !== undefined;
}

/** The calling thread's runtime, created on first use. */
export function runtime(): Runtime {
  if (current) return current;
  const det = options.deterministic ?? envDeterministic();
  if (det) checkBlasMode(options.blas, options.deterministic !== undefined);
  const variant = chooseVariant(readEnv("PLAIT_SIMD"), det);
  const memory = new WebAssembly.Memory({
    initial: layout.INITIAL_PAGES,
    maximum: layout.MAXIMUM_PAGES,
    shared: true,
  });
  const memoryLimit = options.memoryLimit ?? layout.MAXIMUM_PAGES * layout.PAGE_BYTES;
  return start(
    { memory, variant, modules: compileKernels(variant), memoryLimit, deterministic: det },
    options.threads ?? defaultThreads(),
    -1,
  );
}

/** This thread's handle to pass to threads that should share its memory and kernels. */
export function runtimeHandle(): RuntimeHandle {
  const { memory, variant, modules, heap, deterministic } = runtime();
  return { memory, variant, modules, memoryLimit: heap.limit, deterministic };
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

function start(
  { memory, variant, modules, memoryLimit, deterministic }: RuntimeHandle,
  threads: number,
  parent: number,
): Runtime {
  const k = instantiateKernels(memory, modules, layout, parent);
  const heap = new SharedHeap(memory, memoryLimit, k.stackSlot);
  const arena = new Arena(heap);
  const pool = new Pool(memory, modules, arena, k as any, k.stackSlot, threads);
  current = { memory, variant, modules, arena, heap, k, pool, threads, deterministic: deterministic === true };
  return current;
}
