// @ts-nocheck: a plain script for the GPU machine, run from dist/ without a build step
// Device buffers for the GPU scripts, on the CUDA calls NcclComm binds (ffi/nccl-cuda.ts): a
// minimal DeviceTensor (shape, dtype, size, byteLength, deviceIndex, ptr) with upload/download.
import { cudaCalls } from "../../dist/ffi/nccl-cuda.js";

const BYTES = { f64: 8, f32: 4, f16: 2, bf16: 2, i32: 4, u8: 1 };

export class Buf {
  constructor(shape, dtype, deviceIndex) {
    this.shape = shape;
    this.dtype = dtype;
    this.deviceIndex = deviceIndex;
    this.size = shape.reduce((a, b) => a * b, 1);
    this.byteLength = this.size * BYTES[dtype];
    const cuda = cudaCalls();
    cuda.check(cuda.fn.cudaSetDevice(deviceIndex), "cudaSetDevice");
    this.ptr = BigInt(cuda.out("cudaMalloc", [Math.max(1, this.byteLength)]));
    this.disposed = false;
  }
  /** Host → device from a typed array of the same byte length, then waits. */
  upload(data) {
    const cuda = cudaCalls();
    cuda.check(cuda.fn.cudaMemcpyAsync(this.ptr, data, data.byteLength, 1, 0n), "cudaMemcpyAsync");
    cuda.check(cuda.fn.cudaStreamSynchronize(0n), "cudaStreamSynchronize");
    return this;
  }
  /** Device → host into a new Uint8Array (after every stream's work: a device-wide copy on stream 0). */
  download() {
    const cuda = cudaCalls();
    const out = new Uint8Array(this.byteLength);
    cuda.check(cuda.fn.cudaMemcpyAsync(out, this.ptr, this.byteLength, 2, 0n), "cudaMemcpyAsync");
    cuda.check(cuda.fn.cudaStreamSynchronize(0n), "cudaStreamSynchronize");
    return out;
  }
  dispose() {
    if (this.disposed) return;
    cudaCalls().fn.cudaFree(this.ptr);
    this.disposed = true;
  }
}

/** f32 → bf16 bit patterns (round to nearest even), and back. */
export function toBf16(f32) {
  const u = new Uint32Array(f32.buffer, f32.byteOffset, f32.length);
  const out = new Uint16Array(f32.length);
  for (let i = 0; i < u.length; i++) out[i] = (u[i] + 0x7fff + ((u[i] >>> 16) & 1)) >>> 16;
  return out;
}
export function fromBf16(bits) {
  const u = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) u[i] = bits[i] << 16;
  return new Float32Array(u.buffer);
}
