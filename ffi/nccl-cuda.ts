// The few CUDA runtime calls NcclComm needs (device selection, streams, events, device memory),
// bound here on the same library ffi/cuda.ts finds. To be merged into the CUDA bindings
// (ffi/cuda/runtime.ts) once both have landed; the prototypes are the same there.
import { CUDART_SPEC } from "./cuda.ts";
import { libraryMode, openLibrary } from "./find.ts";
import type { NativeFunction } from "./native.ts";

const PROTOTYPES = {
  cudaSetDevice: "int cudaSetDevice(int device)",
  cudaGetDeviceCount: "int cudaGetDeviceCount(_Out_ int *count)",
  cudaGetErrorName: "const char *cudaGetErrorName(int error)",
  cudaGetErrorString: "const char *cudaGetErrorString(int error)",
  cudaMalloc: "int cudaMalloc(_Out_ uintptr_t *devPtr, size_t size)",
  cudaFree: "int cudaFree(void *devPtr)",
  cudaMemcpyAsync: "int cudaMemcpyAsync(void *dst, void *src, size_t count, int kind, void *stream)",
  cudaMemsetAsync: "int cudaMemsetAsync(void *devPtr, int value, size_t count, void *stream)",
  cudaStreamCreateWithFlags: "int cudaStreamCreateWithFlags(_Out_ uintptr_t *stream, unsigned int flags)",
  cudaStreamDestroy: "int cudaStreamDestroy(void *stream)",
  cudaStreamSynchronize: "int cudaStreamSynchronize(void *stream)",
  cudaStreamWaitEvent: "int cudaStreamWaitEvent(void *stream, void *event, unsigned int flags)",
  cudaEventCreateWithFlags: "int cudaEventCreateWithFlags(_Out_ uintptr_t *event, unsigned int flags)",
  cudaEventRecord: "int cudaEventRecord(void *event, void *stream)",
  cudaEventQuery: "int cudaEventQuery(void *event)",
  cudaEventDestroy: "int cudaEventDestroy(void *event)",
} as const;

/** cudaError_t values NcclComm tells apart. */
export const cudaSuccess = 0;
export const cudaErrorNotReady = 600;
export const cudaMemcpyHostToDevice = 1;
export const cudaMemcpyDeviceToHost = 2;
export const cudaMemcpyDeviceToDevice = 3;
export const cudaStreamNonBlocking = 1;
export const cudaEventDisableTiming = 2;

export interface CudaCalls {
  readonly path: string;
  readonly fn: { readonly [K in keyof typeof PROTOTYPES]: NativeFunction };
  /** "cudaErrorNotReady (device not ready)" for an error code. */
  describe(rc: number): string;
  /** Throws naming the call, the context and the CUDA error for rc ≠ cudaSuccess. */
  check(rc: number, call: string, context?: string): void;
  /** Calls a function whose first argument is an out-pointer and returns what it wrote. */
  out(call: keyof typeof PROTOTYPES, args: unknown[], context?: string): number;
}

let calls: CudaCalls | undefined;

/** The CUDA runtime (PLAIT_CUDART or discovery), bound once per process. */
export function cudaCalls(): CudaCalls {
  if (calls) return calls;
  const found = openLibrary(CUDART_SPEC, libraryMode(CUDART_SPEC), Object.keys(PROTOTYPES));
  const fn = Object.fromEntries(
    Object.entries(PROTOTYPES).map(([name, proto]) => [name, found.lib.func(proto)]),
  ) as unknown as CudaCalls["fn"];
  const describe = (rc: number) => `${String(fn.cudaGetErrorName(rc))} (${String(fn.cudaGetErrorString(rc))})`;
  const check = (rc: number, call: string, context?: string) => {
    if (rc !== cudaSuccess) throw new Error(`plait: ${call} failed${context ? ` (${context})` : ""}: ${describe(rc)}`);
  };
  calls = {
    path: found.path,
    fn,
    describe,
    check,
    out(call, args, context) {
      const out = [0];
      check(fn[call](out, ...args), call, context);
      return Number(out[0]);
    },
  };
  return calls;
}
