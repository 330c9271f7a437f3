// @ts-nocheck: a plain script for the GPU machine, run from dist/ without a build step
// Device buffers for the GPU scripts, on plait's CUDA runtime binding (ffi/cuda/runtime.ts): a
// minimal DeviceTensor (shape, dtype, size, byteLength, deviceIndex, ptr) with upload/download.
import { free, malloc, memcpyDtoH, memcpyHtoD, setDevice, streamSynchronize } from "../../dist/ffi/cuda/runtime.js";

const BYTES = { f64: 8, f32: 4, f16: 2, bf16: 2, i32: 4, u8: 1 };

export class Buf {
  constructor(shape, dtype, deviceIndex) {
    this.shape = shape;
    this.dtype = dtype;
    this.deviceIndex = deviceIndex;
    this.size = shape.reduce((a, b) => a * b, 1);
    this.byteLength = this.size * BYTES[dtype];
    setDevice(deviceIndex);
    this.ptr = malloc(Math.max(1, this.byteLength));
    this.disposed = false;
  }
  /** Host → device from a typed array of the same byte length, then waits. */
  upload(data) {
    memcpyHtoD(this.ptr, data, 0n);
    streamSynchronize(0n);
    return this;
  }
  /** Device → host into a new Uint8Array (after every stream's work: a device-wide copy on stream 0). */
  download() {
    const out = new Uint8Array(this.byteLength);
    memcpyDtoH(out, this.ptr, 0n);
    streamSynchronize(0n);
    return out;
  }
  dispose() {
    if (this.disposed) return;
    free(this.ptr);
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
