// The CUDA driver API (libcuda.so.1, installed with the NVIDIA driver, not the toolkit): only what
// the PTX kernels need: the device's primary context (the one the runtime API uses, so memory from
// cudaMalloc is valid in kernels launched here), modules and launches. Opened on first use.
import { CUDA_DRIVER_SPEC } from "../cuda.ts";
import { libraryMode, openLibrary } from "../find.ts";
import { DRIVER } from "./api.ts";
import { CudaError } from "./errors.ts";
import { type Bound, bindAll, type Stream } from "./runtime.ts";

/** A CUmodule, CUfunction or CUcontext. */
export type Handle = bigint;

export interface DriverLibrary {
  readonly path: string;
  readonly fn: Bound<typeof DRIVER>;
}

let loaded: DriverLibrary | undefined;

/** Opens libcuda and calls cuInit(0) once (throws LibraryError, or CudaError from cuInit). */
export function driver(): DriverLibrary {
  if (loaded) return loaded;
  const found = openLibrary(CUDA_DRIVER_SPEC, libraryMode(CUDA_DRIVER_SPEC), Object.keys(DRIVER));
  const lib = { path: found.path, fn: bindAll(found.lib, DRIVER) };
  checkDriver(lib, lib.fn.cuInit(0), "cuInit");
  loaded = lib;
  return lib;
}

/** Throws CudaError when a driver call returned a non-zero CUresult. */
export function checkDriver(lib: DriverLibrary, rc: number, call: string, context?: string): void {
  if (rc === 0) return;
  const name = [""];
  const text = [""];
  const known = lib.fn.cuGetErrorName(rc, name) === 0;
  if (known) lib.fn.cuGetErrorString(rc, text);
  throw new CudaError(
    call,
    "driver",
    rc,
    known ? String(name[0]) : "unknown CUresult",
    known ? String(text[0]) : "no description",
    context,
  );
}

function call(name: keyof typeof DRIVER, args: unknown[], context?: string): void {
  const lib = driver();
  checkDriver(lib, lib.fn[name](...args), name, context);
}

function handleOut(name: keyof typeof DRIVER, args: unknown[], context?: string): Handle {
  const box = [0];
  call(name, [box, ...args], context);
  return BigInt(box[0]);
}

/** The device's name, e.g. "NVIDIA H100 80GB HBM3". */
export function deviceName(ordinal: number): string {
  const dev = [0];
  call("cuDeviceGet", [dev, ordinal]);
  const buf = new Uint8Array(256);
  call("cuDeviceGetName", [buf, buf.length, dev[0]]);
  return new TextDecoder().decode(buf.subarray(0, Math.max(0, buf.indexOf(0))));
}

/** Makes device `ordinal`'s primary context current on this thread (retained once per device). */
export function useDevice(ordinal: number): Handle {
  const ctx = primary.get(ordinal) ?? retain(ordinal);
  call("cuCtxSetCurrent", [ctx], `making cuda:${ordinal} current`);
  return ctx;
}

const primary = new Map<number, Handle>();

function retain(ordinal: number): Handle {
  const dev = [0];
  call("cuDeviceGet", [dev, ordinal], `opening cuda:${ordinal}`);
  const ctx = handleOut("cuDevicePrimaryCtxRetain", [dev[0]], `opening cuda:${ordinal}`);
  primary.set(ordinal, ctx);
  return ctx;
}

/** Loads a PTX module (text) into the current context; the driver JIT-compiles it for the GPU. */
export function loadModule(ptx: string, name: string): Handle {
  const image = new TextEncoder().encode(`${ptx}\0`);
  return handleOut("cuModuleLoadData", [image], `loading PTX module ${name}`);
}

export function moduleFunction(module: Handle, entry: string): Handle {
  return handleOut("cuModuleGetFunction", [module, entry], `looking up kernel ${entry}`);
}

export function unloadModule(module: Handle): void {
  call("cuModuleUnload", [module]);
}

/** Grid and block sizes of a launch. */
export interface LaunchDims {
  grid: readonly [number, number?, number?];
  block: readonly [number, number?, number?];
  sharedBytes?: number;
  stream?: Stream;
}

/** cuLaunchKernel with a packed parameter array (see kernels.ts: packParams). */
export function launch(fn: Handle, dims: LaunchDims, params: BigUint64Array, name: string): void {
  const [gx, gy = 1, gz = 1] = dims.grid;
  const [bx, by = 1, bz = 1] = dims.block;
  call(
    "cuLaunchKernel",
    [fn, gx, gy, gz, bx, by, bz, dims.sharedBytes ?? 0, dims.stream ?? 0n, params, null],
    `launching ${name}`,
  );
}
