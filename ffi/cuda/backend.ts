// The CUDA side of CudaTensor (src/core/device.ts): allocation, copies and one stream per device,
// on the runtime API. Importing this file registers the functions and loads nothing; the CUDA
// runtime opens at the first tensor moved to a device. Every op plait runs on a device is queued
// on that device's stream (`deviceStream`), so work is ordered without host waits; reading back
// waits for the stream.
import { type CudaBackend, registerCudaBackend } from "../../src/core/device.ts";
import { BlockPool } from "./pool.ts";
import {
  free,
  malloc,
  memcpyDtoD,
  memcpyDtoH,
  memcpyHtoD,
  type Stream,
  setDevice,
  streamCreate,
  streamSynchronize,
} from "./runtime.ts";

const streams = new Map<number, Stream>();

/**
 * The stream plait queues device `index`'s work on (created on first use, non-blocking); makes
 * the device current. NCCL calls and user kernels that touch plait's tensors go on it too, or
 * order themselves against it with events.
 */
export function deviceStream(index: number, context?: string): Stream {
  setDevice(index, context);
  let s = streams.get(index);
  if (s === undefined) {
    s = streamCreate(true);
    streams.set(index, s);
  }
  return s;
}

/** Waits until every op queued on device `index`'s stream is done. */
export function synchronizeDevice(index: number): void {
  streamSynchronize(deviceStream(index), `waiting for cuda:${index}`);
}

/** CudaTensors' device memory: cudaMalloc'd blocks, cached for reuse on dispose (pool.ts). */
export const devicePool: BlockPool = new BlockPool(
  (index, bytes, context) => {
    setDevice(index, `${context} (selecting cuda:${index})`);
    return malloc(bytes, `${context} on cuda:${index}`);
  },
  (index, ptr) => {
    setDevice(index);
    free(ptr); // cudaFree waits for the device's work, so a pending op never reads freed memory
  },
);

/** The runtime-API backend of CudaTensor (registered below; tests swap in a fake and restore it). */
export const cudaBackend: CudaBackend = {
  alloc(index, bytes, context) {
    return devicePool.alloc(index, bytes, context);
  },
  free(index, ptr) {
    devicePool.dispose(index, ptr); // reused by a later tensor on the same stream (pool.ts)
  },
  upload(index, dst, src, context) {
    const s = deviceStream(index, context);
    memcpyHtoD(dst, src, s, context);
    streamSynchronize(s, context); // the host bytes may be reused as soon as this returns
  },
  download(index, dst, src, context) {
    const s = deviceStream(index, context);
    memcpyDtoH(dst, src, s, context);
    streamSynchronize(s, context);
  },
  copy(index, dst, src, bytes) {
    memcpyDtoD(dst, src, bytes, deviceStream(index));
  },
};

registerCudaBackend(cudaBackend);
