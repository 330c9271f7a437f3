// The CUDA runtime (libcudart) through koffi: devices, memory, copies, streams and events. The
// library is opened on the first call (ffi/find.ts's search, CUDART_SPEC), never at import.
// Device pointers and handles are bigints (0n is the legacy default stream); every non-zero
// cudaError_t becomes a CudaError naming the call.
import { CUDART_SPEC } from "../cuda.ts";
import { libraryMode, openLibrary } from "../find.ts";
import type { NativeFunction, NativeLibrary } from "../native.ts";
import {
  cudaErrorNotReady,
  cudaEventDisableTiming,
  cudaMemcpyDeviceToDevice,
  cudaMemcpyDeviceToHost,
  cudaMemcpyHostToDevice,
  cudaStreamNonBlocking,
  DEVICE_ATTRIBUTES,
  RUNTIME,
} from "./api.ts";
import { CudaError } from "./errors.ts";

/** A device address (what cudaMalloc returned, plus an offset). */
export type DevicePtr = bigint;
/** A cudaStream_t; 0n is the legacy default stream. */
export type Stream = bigint;
/** A cudaEvent_t. */
export type Event = bigint;

/** The bound functions of a table of prototypes. */
export type Bound<T> = { readonly [K in keyof T]: NativeFunction };

/** Binds every prototype of `table` on `lib`. */
export function bindAll<T extends Record<string, string>>(lib: NativeLibrary, table: T): Bound<T> {
  const out: Record<string, NativeFunction> = {};
  for (const [name, proto] of Object.entries(table)) out[name] = lib.func(proto);
  return out as Bound<T>;
}

/** The loaded runtime: its path and bound functions. */
export interface RuntimeLibrary {
  readonly path: string;
  readonly fn: Bound<typeof RUNTIME>;
}

let loaded: RuntimeLibrary | undefined;

/** Opens libcudart on first use (throws LibraryError naming every path tried when it cannot). */
export function cudart(): RuntimeLibrary {
  if (loaded) return loaded;
  const found = openLibrary(CUDART_SPEC, libraryMode(CUDART_SPEC), Object.keys(RUNTIME));
  loaded = { path: found.path, fn: bindAll(found.lib, RUNTIME) };
  return loaded;
}

/** Throws CudaError when a runtime call returned a non-zero cudaError_t. */
export function check(rc: number, call: string, context?: string): void {
  if (rc === 0) return;
  const { fn } = cudart();
  fn.cudaGetLastError(); // clears the sticky-free error state, so the next call starts clean
  throw new CudaError(call, "runtime", rc, String(fn.cudaGetErrorName(rc)), String(fn.cudaGetErrorString(rc)), context);
}

/** Calls `name` with `args`, then an out-array's first value; throws CudaError on failure. */
function out<T = number>(name: keyof typeof RUNTIME, args: unknown[], context?: string): T {
  const box = [0];
  check(cudart().fn[name](box, ...args), name, context);
  return box[0] as T;
}

/** How many CUDA devices this process sees (throws CudaError: 35 without a driver, 100 without a device). */
export function deviceCount(): number {
  return out("cudaGetDeviceCount", []);
}

/** One cudaDeviceAttr of device `device` (ids in api.ts, checked against driver_types.h). */
export function deviceAttribute(attr: keyof typeof DEVICE_ATTRIBUTES, device: number): number {
  return out("cudaDeviceGetAttribute", [DEVICE_ATTRIBUTES[attr], device], `reading ${attr} of cuda:${device}`);
}

/** What `plait env` and benchmarks report about a device. */
export interface DeviceInfo {
  index: number;
  computeCapability: string;
  multiProcessors: number;
  maxThreadsPerBlock: number;
  warpSize: number;
  sharedMemoryPerBlock: number;
  l2CacheBytes: number;
  clockKHz: number;
  memoryClockKHz: number;
  memoryBusBits: number;
  freeBytes: number;
  totalBytes: number;
}

/** Device `index`'s attributes and memory (makes it the current device). */
export function deviceInfo(index: number): DeviceInfo {
  const a = (k: keyof typeof DEVICE_ATTRIBUTES) => deviceAttribute(k, index);
  setDevice(index);
  const { free, total } = memGetInfo();
  return {
    index,
    computeCapability: `${a("cudaDevAttrComputeCapabilityMajor")}.${a("cudaDevAttrComputeCapabilityMinor")}`,
    multiProcessors: a("cudaDevAttrMultiProcessorCount"),
    maxThreadsPerBlock: a("cudaDevAttrMaxThreadsPerBlock"),
    warpSize: a("cudaDevAttrWarpSize"),
    sharedMemoryPerBlock: a("cudaDevAttrMaxSharedMemoryPerBlock"),
    l2CacheBytes: a("cudaDevAttrL2CacheSize"),
    clockKHz: a("cudaDevAttrClockRate"),
    memoryClockKHz: a("cudaDevAttrMemoryClockRate"),
    memoryBusBits: a("cudaDevAttrGlobalMemoryBusWidth"),
    freeBytes: free,
    totalBytes: total,
  };
}

/** Makes `device` current on this thread (its primary context, which the driver API shares). */
export function setDevice(device: number, context?: string): void {
  check(cudart().fn.cudaSetDevice(device), "cudaSetDevice", context ?? `selecting cuda:${device}`);
}

export function getDevice(): number {
  return out("cudaGetDevice", []);
}

export function deviceSynchronize(): void {
  check(cudart().fn.cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

/** Free and total bytes of the current device. */
export function memGetInfo(): { free: number; total: number } {
  const free = [0];
  const total = [0];
  check(cudart().fn.cudaMemGetInfo(free, total), "cudaMemGetInfo");
  return { free: Number(free[0]), total: Number(total[0]) };
}

/** `bytes` of device memory on the current device. */
export function malloc(bytes: number, context?: string): DevicePtr {
  return BigInt(out("cudaMalloc", [bytes], context ?? `allocating ${bytes} bytes`));
}

export function free(ptr: DevicePtr): void {
  check(cudart().fn.cudaFree(ptr), "cudaFree");
}

/** Page-locked host memory (for staging copies that overlap); a bigint host address. */
export function mallocHost(bytes: number): bigint {
  return BigInt(out("cudaMallocHost", [bytes]));
}

export function freeHost(ptr: bigint): void {
  check(cudart().fn.cudaFreeHost(ptr), "cudaFreeHost");
}

/** Host → device, `src.byteLength` bytes. With a pageable source the copy is done when this returns. */
export function memcpyHtoD(dst: DevicePtr, src: ArrayBufferView, stream: Stream = 0n, context?: string): void {
  const rc = cudart().fn.cudaMemcpyAsync(dst, src, src.byteLength, cudaMemcpyHostToDevice, stream);
  check(rc, "cudaMemcpyAsync", context ?? `copying ${src.byteLength} bytes host → device`);
}

/** Device → host into `dst` (all of it); synchronize `stream` before reading `dst`. */
export function memcpyDtoH(dst: ArrayBufferView, src: DevicePtr, stream: Stream = 0n, context?: string): void {
  const rc = cudart().fn.cudaMemcpyAsync(dst, src, dst.byteLength, cudaMemcpyDeviceToHost, stream);
  check(rc, "cudaMemcpyAsync", context ?? `copying ${dst.byteLength} bytes device → host`);
}

/** Device → device, `bytes` bytes, ordered on `stream`. */
export function memcpyDtoD(dst: DevicePtr, src: DevicePtr, bytes: number, stream: Stream = 0n): void {
  check(cudart().fn.cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream), "cudaMemcpyAsync");
}

/** Sets `bytes` bytes at `dst` to `value`, ordered on `stream`. */
export function memsetAsync(dst: DevicePtr, value: number, bytes: number, stream: Stream = 0n): void {
  check(cudart().fn.cudaMemsetAsync(dst, value, bytes, stream), "cudaMemsetAsync");
}

/** A new stream on the current device; non-blocking (no implicit sync with stream 0) by default. */
export function streamCreate(nonBlocking = true): Stream {
  return BigInt(out("cudaStreamCreateWithFlags", [nonBlocking ? cudaStreamNonBlocking : 0]));
}

export function streamDestroy(stream: Stream): void {
  check(cudart().fn.cudaStreamDestroy(stream), "cudaStreamDestroy");
}

export function streamSynchronize(stream: Stream = 0n, context?: string): void {
  check(cudart().fn.cudaStreamSynchronize(stream), "cudaStreamSynchronize", context);
}

/** Whether every op queued on `stream` is done (cudaStreamQuery: cudaSuccess or cudaErrorNotReady). */
export function streamDone(stream: Stream): boolean {
  const rc = cudart().fn.cudaStreamQuery(stream);
  if (rc === cudaErrorNotReady) return false;
  check(rc, "cudaStreamQuery");
  return true;
}

/** Whether a recorded event has completed (cudaEventQuery), for polling without blocking the event loop. */
export function eventDone(event: Event): boolean {
  const rc = cudart().fn.cudaEventQuery(event);
  if (rc === cudaErrorNotReady) return false;
  check(rc, "cudaEventQuery");
  return true;
}

/** Makes `stream` wait for `event` (no host wait). */
export function streamWaitEvent(stream: Stream, event: Event): void {
  check(cudart().fn.cudaStreamWaitEvent(stream, event, 0), "cudaStreamWaitEvent");
}

/** A new event; `timing: false` makes it cheaper when only ordering is needed. */
export function eventCreate(timing = true): Event {
  return BigInt(out("cudaEventCreateWithFlags", [timing ? 0 : cudaEventDisableTiming]));
}

export function eventRecord(event: Event, stream: Stream = 0n): void {
  check(cudart().fn.cudaEventRecord(event, stream), "cudaEventRecord");
}

export function eventSynchronize(event: Event): void {
  check(cudart().fn.cudaEventSynchronize(event), "cudaEventSynchronize");
}

/** Milliseconds between two recorded, completed events. */
export function eventElapsedMs(start: Event, end: Event): number {
  return out("cudaEventElapsedTime", [start, end]);
}

export function eventDestroy(event: Event): void {
  check(cudart().fn.cudaEventDestroy(event), "cudaEventDestroy");
}
