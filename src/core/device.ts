// Tensors on a CUDA device: a separate class (CudaTensor) beside the CPU Tensor, so that no CPU
// path changes. A CudaTensor holds a device pointer, a shape and a dtype; ops that take CUDA
// tensors dispatch on the class (matmul → cuBLAS), and every CPU op refuses one with an error
// naming both devices. src/core never imports ffi/: the CUDA side (ffi/cuda/backend.ts)
// registers the few functions this file needs when plait is imported; nothing native loads
// until a tensor is first moved to a device.
import { bytesOf, checkDType, type DType } from "./dtype.ts";
import { runtime } from "./runtime.ts";
import { OWNED, track, untrack } from "./scope.ts";
import { checkShape, type Shape, shapeStr, sizeOf, Tensor, typeName } from "./tensor.ts";

/** A CUDA device name: "cuda:0", "cuda:1", … */
export type CudaDevice = `cuda:${number}`;
/** Where a tensor lives. */
export type Device = "cpu" | CudaDevice;

/** Parses a device string; throws naming `what` for anything but "cpu", "cuda" (= "cuda:0") and "cuda:N". */
export function parseDevice(value: unknown, what: string): { kind: "cpu" } | { kind: "cuda"; index: number } {
  if (value === "cpu") return { kind: "cpu" };
  if (value === "cuda") return { kind: "cuda", index: 0 };
  const m = typeof value === "string" ? /^cuda:(0|[1-9]\d{0,3})$/.exec(value) : null;
  if (m) return { kind: "cuda", index: Number(m[1]) };
  throw new TypeError(
    `plait: ${what} must be "cpu", "cuda" or "cuda:N" with N a device index ≥ 0, got ${typeName(value)}`,
  );
}

/** What the CUDA side provides to CudaTensor (registered by ffi/cuda/backend.ts). */
export interface CudaBackend {
  /** `bytes` of memory on device `index` (≥ 1 byte is asked for even when bytes is 0). */
  alloc(index: number, bytes: number, context: string): bigint;
  free(index: number, ptr: bigint): void;
  /** Host → device; done (the source may be reused) when it returns. */
  upload(index: number, dst: bigint, src: Uint8Array, context: string): void;
  /** Device → host, after every queued op on the device's stream; done when it returns. */
  download(index: number, dst: Uint8Array, src: bigint, context: string): void;
  /** Device → device copy of `bytes` (same device), ordered on the device's stream. */
  copy(index: number, dst: bigint, src: bigint, bytes: number): void;
}

let backend: CudaBackend | undefined;

/** Installs the CUDA functions (ffi/cuda/backend.ts does, when plait is imported). */
export function registerCudaBackend(b: CudaBackend): void {
  backend = b;
}

function cuda(): CudaBackend {
  if (!backend) {
    throw new Error(
      "plait: no CUDA backend is registered: import plait (or ffi/cuda/backend.ts) before moving tensors to a device",
    );
  }
  return backend;
}

/**
 * A contiguous row-major array in a CUDA device's memory. It owns its bytes until `dispose()`
 * (or the end of the enclosing `scope`, or a `using` block). `ptr`, `byteLength`, `dtype` and
 * `deviceIndex` are what a native call (cuBLAS, NCCL, a kernel) needs; ops run on the device's
 * stream in issue order, and reading back (`to("cpu")`, `toArray()`) waits for them.
 */
export class CudaTensor {
  readonly [OWNED] = true as const;
  readonly size: number;
  readonly byteLength: number;
  readonly device: CudaDevice;
  private ptr_: bigint;

  /** Allocates an uninitialised tensor on device `deviceIndex`. */
  constructor(
    readonly shape: Shape,
    readonly dtype: DType,
    readonly deviceIndex: number,
  ) {
    checkDType(dtype, "new CudaTensor() argument dtype");
    this.size = sizeOf(shape);
    this.byteLength = this.size * bytesOf(dtype);
    this.device = `cuda:${deviceIndex}`;
    this.ptr_ = cuda().alloc(deviceIndex, Math.max(this.byteLength, 1), `allocating ${this.describe()}`);
    track(this);
  }

  /** The device address of the first element. */
  get ptr(): bigint {
    if (this.ptr_ < 0n) throw new Error(`plait: tensor ${this.describe()} was used after dispose()`);
    return this.ptr_;
  }

  get disposed(): boolean {
    return this.ptr_ < 0n;
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** A copy on `device`: "cpu" gives a Tensor, "cuda:N" a CudaTensor (a copy even on the same device). */
  to(device: "cpu"): Tensor;
  to(device: CudaDevice | "cuda"): CudaTensor;
  to(device: string): Tensor | CudaTensor;
  to(device: string): Tensor | CudaTensor {
    return toDevice(this, device);
  }

  /** The elements as plain numbers (copied to the host; f16/bf16 decoded exactly). */
  toArray(): number[] {
    const host = this.to("cpu");
    try {
      return host.toArray();
    } finally {
      host.dispose();
    }
  }

  dispose(): void {
    if (this.ptr_ < 0n) return;
    cuda().free(this.deviceIndex, this.ptr_);
    this.ptr_ = -1n;
    untrack(this);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  describe(): string {
    return `${this.dtype}${shapeStr(this.shape)} on ${this.device}`;
  }
}

/** Either kind of tensor. */
export type AnyTensor = Tensor | CudaTensor;

/** Whether `t` is a CudaTensor: where an op, a step or a strategy branches to its device form. */
export const isCuda = (t: unknown): t is CudaTensor => t instanceof CudaTensor;

/** Whether any of `xs` is a CudaTensor. */
export const anyCuda = (xs: readonly unknown[]): boolean => xs.some(isCuda);

/** The device a tensor lives on. */
export const deviceOf = (t: AnyTensor): Device => (isCuda(t) ? t.device : "cpu");

/** A copy of `t` on `device` (see CudaTensor.to and Tensor.to). */
export function toDevice(t: AnyTensor, device: unknown): AnyTensor {
  const target = parseDevice(device, "to() argument device");
  const bytes = (x: AnyTensor) => x.byteLength;
  if (t instanceof CudaTensor) {
    const src = t.ptr; // throws after dispose
    if (target.kind === "cpu") {
      const out = new Tensor(t.shape, t.dtype);
      const view = new Uint8Array(runtime().memory.buffer, out.ptr, out.byteLength);
      try {
        if (bytes(t) > 0) cuda().download(t.deviceIndex, view, src, `copying ${t.describe()} to cpu`);
      } catch (e) {
        out.dispose();
        throw e;
      }
      return out;
    }
    if (target.index !== t.deviceIndex) {
      // through the host: peer copies need cudaMemcpyPeer and P2P access, not wired yet
      const host = toDevice(t, "cpu") as Tensor;
      try {
        return toDevice(host, device);
      } finally {
        host.dispose();
      }
    }
    const out = new CudaTensor(t.shape, t.dtype, t.deviceIndex);
    if (bytes(t) > 0) cuda().copy(t.deviceIndex, out.ptr, src, bytes(t));
    return out;
  }
  const view = new Uint8Array(runtime().memory.buffer, t.ptr, t.byteLength);
  if (target.kind === "cpu") {
    const out = new Tensor(t.shape, t.dtype);
    new Uint8Array(runtime().memory.buffer, out.ptr, out.byteLength).set(view);
    return out;
  }
  const out = new CudaTensor(t.shape, t.dtype, target.index);
  try {
    if (t.byteLength > 0) cuda().upload(target.index, out.ptr, view, `copying ${t.describe()} to ${out.device}`);
  } catch (e) {
    out.dispose();
    throw e;
  }
  return out;
}

/** An uninitialised tensor on a device, checked like zeros()'s arguments. */
export function emptyOn(device: CudaDevice, shape: Shape, dtype: DType): CudaTensor {
  const target = parseDevice(device, "device");
  if (target.kind !== "cuda") throw new TypeError(`plait: emptyOn: device must be cuda:N, got ${device}`);
  return new CudaTensor(checkShape(shape, "shape"), dtype, target.index);
}

/**
 * The check a CPU op runs on an argument that is not a Tensor: a CudaTensor gets an error naming
 * both devices (the op runs on cpu, the argument is on cuda:N) and the fix.
 */
export function refuseDevice(op: string, arg: string, x: unknown): void {
  if (x instanceof CudaTensor) {
    throw new TypeError(
      `plait: ${op}: argument ${arg} (${x.describe()}) is on ${x.device}, but ${op} runs on cpu here (its other arguments are on cpu, or it has no ${x.device} implementation): move it with .to("cpu"), or move the others with .to("${x.device}")`,
    );
  }
}

/** Checks that every tensor argument lives on one device; the error names both devices. */
export function checkSameDevice(op: string, args: readonly (readonly [string, AnyTensor | undefined])[]): Device {
  let first: [string, Device] | undefined;
  for (const [name, t] of args) {
    if (t === undefined) continue;
    const d = deviceOf(t);
    if (!first) first = [name, d];
    else if (d !== first[1]) {
      throw new TypeError(
        `plait: ${op}: argument ${name} is on ${d}, but argument ${first[0]} is on ${first[1]}: tensors of one op must be on one device (move one with .to("${first[1]}"))`,
      );
    }
  }
  return first?.[1] ?? "cpu";
}

/**
 * Copies `bytes` bytes from `src` at byte `srcOffset` to `dst` at byte `dstOffset` (one device,
 * ordered on its stream): how a flat gradient bucket is packed and unpacked on the device.
 */
export function copyWithin(
  dst: CudaTensor,
  dstOffset: number,
  src: CudaTensor,
  srcOffset: number,
  bytes: number,
): void {
  if (dst.deviceIndex !== src.deviceIndex)
    throw new TypeError(`plait: copyWithin: dst is on ${dst.device}, src on ${src.device}: one device expected`);
  if (dstOffset < 0 || srcOffset < 0 || dstOffset + bytes > dst.byteLength || srcOffset + bytes > src.byteLength)
    throw new RangeError(
      `plait: copyWithin: ${bytes} bytes at ${srcOffset} of ${src.describe()} to ${dstOffset} of ${dst.describe()} is out of bounds`,
    );
  if (bytes > 0) cuda().copy(dst.deviceIndex, dst.ptr + BigInt(dstOffset), src.ptr + BigInt(srcOffset), bytes);
}

let tapeProbe: ((t: CudaTensor) => boolean) | null = null;

/** Installs (null removes) the test "is this device tensor recorded by a device tape" (for src/ops/deviceTape.ts). */
export function setDeviceTapeProbe(p: ((t: CudaTensor) => boolean) | null): void {
  tapeProbe = p;
}

/**
 * Wraps raw device kernel `fn` (public name `cuda.<name>`) so that it throws when a tensor
 * argument (or one in an options object) is recorded by valueAndGrad's device tape: the kernel
 * records nothing, so that tensor's gradient would silently miss its contribution. core/taped.ts's
 * rule for `core.*`, on a device.
 */
export function refusingDeviceTaped<F extends (...args: never[]) => unknown>(name: string, fn: F): F {
  const taped = (v: unknown): boolean =>
    (v instanceof CudaTensor && tapeProbe!(v)) ||
    (v !== null &&
      typeof v === "object" &&
      Object.getPrototypeOf(v) === Object.prototype &&
      Object.values(v).some((x) => x instanceof CudaTensor && tapeProbe!(x)));
  const wrapped = (...args: unknown[]): unknown => {
    if (tapeProbe !== null) {
      const i = args.findIndex(taped);
      if (i >= 0) {
        const t = args[i] instanceof CudaTensor ? (args[i] as CudaTensor) : undefined;
        throw new TypeError(
          `plait: cuda.${name}: argument ${i}${t ? ` (${t.describe()})` : ""} is recorded by valueAndGrad's tape on ${t?.device ?? "a CUDA device"}, but cuda.${name} has no backward there: use the differentiable op from plait (matmul, relu, add, mul, scale, sum, mean, softmaxCrossEntropy)`,
        );
      }
    }
    return (fn as unknown as (...a: unknown[]) => unknown)(...args);
  };
  return wrapped as unknown as F;
}
