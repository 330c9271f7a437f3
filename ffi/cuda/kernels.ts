// The PTX kernels of ffi/cuda/kernels/*.cu: their signatures, the packing of a launch's arguments
// (cuLaunchKernel takes `void **kernelParams`: one pointer per argument, to a copy of its value),
// and a per-device cache of loaded modules. The packing is plain arithmetic over a
// SharedArrayBuffer (whose memory never moves), unit-tested without a GPU.
import { readFileSync } from "node:fs";
import { addressOf } from "../native.ts";
import { type Handle, type LaunchDims, launch, loadModule, moduleFunction, useDevice } from "./driver.ts";

/** The C type of a kernel parameter: a device pointer, or a scalar. */
export type ParamType = "ptr" | "u64" | "i32" | "u32" | "f32";

const SIZE: Record<ParamType, number> = { ptr: 8, u64: 8, i32: 4, u32: 4, f32: 4 };

/** Byte offset of each parameter in the value buffer (natural alignment), and the total size. */
export function paramLayout(types: readonly ParamType[]): { offsets: number[]; bytes: number } {
  const offsets: number[] = [];
  let at = 0;
  for (const t of types) {
    const size = SIZE[t];
    at = Math.ceil(at / size) * size;
    offsets.push(at);
    at += size;
  }
  return { offsets, bytes: Math.max(8, Math.ceil(at / 8) * 8) };
}

/** A launch's arguments: the values, and the pointer array that cuLaunchKernel reads. */
export interface PackedParams {
  /** The argument values, each at its offset; must stay alive until the launch returns. */
  readonly values: Uint8Array;
  /** pointers[i] = address of values + offsets[i]. */
  readonly pointers: BigUint64Array;
  readonly offsets: readonly number[];
}

/**
 * Writes `args` (bigint or number for ptr/u64, numbers otherwise) into a value buffer at the
 * layout's offsets and fills the pointer array. `kernel` names the kernel in errors.
 */
export function packParams(
  kernel: string,
  types: readonly ParamType[],
  args: readonly (number | bigint)[],
  base: (values: Uint8Array) => bigint = addressOf,
): PackedParams {
  if (args.length !== types.length) {
    throw new RangeError(
      `plait: kernel ${kernel}: expected ${types.length} arguments (${types.join(", ")}), got ${args.length}`,
    );
  }
  const { offsets, bytes } = paramLayout(types);
  const values = new Uint8Array(new SharedArrayBuffer(bytes));
  const view = new DataView(values.buffer);
  types.forEach((t, i) => {
    const v = args[i];
    const at = offsets[i];
    const bad = (want: string) =>
      new TypeError(`plait: kernel ${kernel}: argument ${i} (${t}) must be ${want}, got ${typeof v} ${String(v)}`);
    if (t === "ptr" || t === "u64") {
      const b = typeof v === "bigint" ? v : Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : undefined;
      if (b === undefined || b < 0n || b >= 1n << 64n) throw bad("a non-negative integer below 2^64");
      view.setBigUint64(at, b, true);
    } else if (typeof v !== "number") throw bad("a number");
    else if (t === "f32") view.setFloat32(at, v, true);
    else if (!Number.isInteger(v)) throw bad("an integer");
    else if (t === "i32") {
      if (v < -(2 ** 31) || v >= 2 ** 31) throw bad("a 32-bit signed integer");
      view.setInt32(at, v, true);
    } else {
      if (v < 0 || v >= 2 ** 32) throw bad("a 32-bit unsigned integer");
      view.setUint32(at, v, true);
    }
  });
  const start = base(values);
  const pointers = new BigUint64Array(types.length);
  offsets.forEach((o, i) => {
    pointers[i] = start + BigInt(o);
  });
  return { values, pointers, offsets };
}

/** A kernel of the committed PTX: its module (file name without .ptx), entry and parameters. */
export interface KernelSpec {
  readonly module: string;
  readonly params: readonly ParamType[];
}

const P = "ptr";
/** Every kernel entry of ffi/cuda/kernels/*.cu, with the C signature's parameter types. */
export const KERNELS: Readonly<Record<string, KernelSpec>> = {
  cast_f32_f16: { module: "cast", params: [P, P, "u64"] },
  cast_f32_bf16: { module: "cast", params: [P, P, "u64"] },
  cast_f16_f32: { module: "cast", params: [P, P, "u64"] },
  cast_bf16_f32: { module: "cast", params: [P, P, "u64"] },
  unscale_f32: { module: "unscale", params: [P, P, "u64", "f32", P] },
  unscale_f16: { module: "unscale", params: [P, P, "u64", "f32", P] },
  unscale_bf16: { module: "unscale", params: [P, P, "u64", "f32", P] },
  sgd_f32: { module: "sgd", params: [P, P, P, "u64", "f32", "f32", "f32", "f32", "i32", "i32"] },
  adam_f32: {
    module: "adamw",
    params: [P, P, P, P, "u64", "f32", "f32", "f32", "f32", "f32", "f32", "f32", "f32"],
  },
  add_f32: { module: "elementwise", params: [P, P, P, "u64"] },
  mul_f32: { module: "elementwise", params: [P, P, P, "u64"] },
  relu_f32: { module: "elementwise", params: [P, P, "u64"] },
  relu_backward_f32: { module: "elementwise", params: [P, P, P, "u64"] },
  add_rows_f32: { module: "elementwise", params: [P, P, "u64", "u64"] },
  softmax_xent_f32: { module: "softmax_xent", params: [P, P, P, P, "u32", "f32"] },
  sum_partial_f32: { module: "reduce", params: [P, "u64", "i32", P] },
  sum_final_f32: { module: "reduce", params: [P, "u32", P] },
  scale_f32: { module: "grad", params: [P, "f32", P, "u64"] },
  axpy_f32: { module: "grad", params: ["f32", P, P, "u64"] },
  scale_by_f32: { module: "grad", params: [P, P, "f32", P, "u64", "i32"] },
  col_sum_f32: { module: "grad", params: [P, P, "u64", "u64", "i32"] },
};

/** The committed PTX text of a module: beside this file in ffi/, or from dist/ffi the source tree's. */
export function ptxSource(module: string): string {
  const here = new URL(`./kernels/${module}.ptx`, import.meta.url);
  try {
    return readFileSync(here, "utf8");
  } catch {
    return readFileSync(new URL(`../../../ffi/cuda/kernels/${module}.ptx`, import.meta.url), "utf8");
  }
}

const functions = new Map<string, Handle>(); // `${device}:${kernel}`
const modules = new Map<string, Handle>(); // `${device}:${module}`

/** The CUfunction of `kernel` on device `device`, loading its module on first use. */
export function kernelFunction(kernel: string, device: number): Handle {
  const key = `${device}:${kernel}`;
  const hit = functions.get(key);
  if (hit !== undefined) return hit;
  const spec = KERNELS[kernel];
  if (!spec) throw new RangeError(`plait: no CUDA kernel named ${kernel}; known: ${Object.keys(KERNELS).join(", ")}`);
  useDevice(device);
  const mkey = `${device}:${spec.module}`;
  let mod = modules.get(mkey);
  if (mod === undefined) {
    mod = loadModule(ptxSource(spec.module), `${spec.module}.ptx`);
    modules.set(mkey, mod);
  }
  const fn = moduleFunction(mod, kernel);
  functions.set(key, fn);
  return fn;
}

/** Launches `kernel` on `device` with `args` packed by its spec. */
export function launchKernel(
  kernel: string,
  device: number,
  dims: LaunchDims,
  args: readonly (number | bigint)[],
): void {
  const fn = kernelFunction(kernel, device);
  const packed = packParams(kernel, KERNELS[kernel].params, args);
  launch(fn, dims, packed.pointers, kernel);
  packed.values.fill(0, 0, 0); // keeps the value buffer reachable until the launch has returned
}

/** A 1-D grid for n elements: 256 threads a block, at most 65535·… blocks (grid-stride loops). */
export function gridFor(n: number, threads = 256): LaunchDims {
  return { grid: [Math.max(1, Math.min(Math.ceil(n / threads), 1 << 16))], block: [threads] };
}
