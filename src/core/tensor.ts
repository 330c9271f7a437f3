import { type CudaDevice, type CudaTensor, parseDevice, refuseDevice, toDevice } from "./device.ts";
import { type AnyTypedArray, arrayTypeOf, bytesOf, checkDType, DTYPES, type DType } from "./dtype.ts";
import { checkOptions } from "./options.ts";
import { runtime } from "./runtime.ts";
import { OWNED, track, untrack } from "./scope.ts";

export type Shape = readonly number[];

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function checkShape(shape: unknown, what: string): Shape {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new TypeError(`plait: ${what} must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  return Object.freeze([...shape]);
}

export const shapeStr = (s: Shape) => `[${s.join(", ")}]`;

/**
 * The one argument check for tensors: `x` is a live Tensor, or an error naming the op, the
 * argument and what came instead (every op, kernel and collective calls it).
 */
export function checkTensor(op: string, arg: string, x: unknown): Tensor {
  if (!(x instanceof Tensor)) {
    refuseDevice(op, arg, x); // a CudaTensor: the error names both devices
    throw new TypeError(`plait: ${op}: argument ${arg} must be a Tensor, got ${typeName(x)}`);
  }
  if (x.disposed) throw new Error(`plait: ${op}: argument ${arg} (${x.describe()}) was used after dispose()`);
  return x;
}

/** How an error message names a value of the wrong kind: "null", "an array", "Float32Array", "number 3", "string \"x\"". */
export function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `string ${JSON.stringify(v)}`;
  return typeof v === "object" ? (v.constructor?.name ?? "an object") : `${typeof v} ${String(v)}`;
}

/**
 * A contiguous, row-major array in plait's shared WebAssembly memory. It owns its bytes until
 * `dispose()` (or the end of the enclosing `scope`, or a `using` block); any use after that
 * throws instead of reading memory that now belongs to another tensor.
 */
export class Tensor {
  readonly [OWNED] = true as const;
  readonly size: number;
  readonly byteLength: number;
  private ptr_: number;

  /** Allocates an uninitialised tensor; most code wants `tensor()` or `zeros()` instead. */
  constructor(
    readonly shape: Shape,
    readonly dtype: DType,
  ) {
    this.size = sizeOf(shape);
    const bytes = bytesOf(dtype);
    if (bytes === undefined) checkDType(dtype, "new Tensor() argument dtype");
    this.byteLength = this.size * bytes;
    this.ptr_ = runtime().arena.alloc(this.byteLength);
    track(this);
  }

  /** Byte address in the shared memory, for kernel calls. */
  get ptr(): number {
    if (this.ptr_ < 0) throw new Error(`plait: tensor ${this.describe()} was used after dispose()`);
    return this.ptr_;
  }

  get disposed(): boolean {
    return this.ptr_ < 0;
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** Where the elements live: always "cpu" for a Tensor (see CudaTensor for "cuda:N"). */
  get device(): "cpu" {
    return "cpu";
  }

  /** A copy on `device`: "cuda:N" gives a CudaTensor (src/core/device.ts), "cpu" a new Tensor. */
  to(device: "cpu"): Tensor;
  to(device: CudaDevice | "cuda"): CudaTensor;
  to(device: string): Tensor | CudaTensor;
  to(device: string): Tensor | CudaTensor {
    return toDevice(this, device);
  }

  /** A live view of the elements (f16/bf16 as raw 16-bit patterns). Valid until dispose. */
  data(): AnyTypedArray {
    const Ctor = arrayTypeOf(this.dtype);
    return new Ctor(runtime().memory.buffer, this.ptr, this.size);
  }

  /** A copy of the elements as float32 (f16/bf16 widened exactly, f64 rounded). */
  toFloat32Array(): Float32Array {
    return Float32Array.from(this.toArray());
  }

  /** A copy of the elements as plain numbers (f16/bf16 decoded exactly). */
  toArray(): number[] {
    const view = this.data();
    const decode = this.dtype === "f16" ? f16ToNumber : this.dtype === "bf16" ? bf16ToNumber : undefined;
    const out = new Array<number>(this.size);
    for (let i = 0; i < this.size; i++) out[i] = decode ? decode(view[i]) : view[i];
    return out;
  }

  dispose(): void {
    if (this.ptr_ < 0) return;
    runtime().arena.free(this.ptr_);
    this.ptr_ = -1;
    untrack(this);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  describe(): string {
    return `${this.dtype}${shapeStr(this.shape)}`;
  }
}

export interface TensorOptions {
  dtype?: DType;
}

const TENSOR_OPTIONS = ["dtype"] as const;

/** The options of tensor(), zeros(), full() and ones(), checked: only `dtype`, one of DTYPES. */
export function tensorOptions(op: string, opts: TensorOptions | undefined): DType | undefined {
  const { dtype } = checkOptions(op, opts, TENSOR_OPTIONS);
  return dtype === undefined ? undefined : checkDType(dtype, `${op} option dtype`);
}

type NestedNumbers = number | readonly NestedNumbers[];

/** The dtype a typed array holds without conversion; Uint16Array (f16 or bf16 bits) is ambiguous. */
const INFERRED: readonly [abstract new (...args: never) => unknown, DType][] = [
  [Float32Array, "f32"],
  [Float64Array, "f64"],
  [Int32Array, "i32"],
  [Uint8Array, "u8"],
];

function dtypeFromData(data: ArrayBufferView): DType {
  for (const [Ctor, dtype] of INFERRED) if (data instanceof Ctor) return dtype;
  const kind = data.constructor?.name ?? Object.prototype.toString.call(data);
  const hint = data instanceof Uint16Array ? " (f16 or bf16 bit patterns: say which)" : "";
  throw new TypeError(
    `plait: tensor() cannot infer a dtype from a ${kind}${hint}; pass { dtype } (one of ${DTYPES.join(", ")}), or give a Float32Array (f32), Float64Array (f64), Int32Array (i32), Uint8Array (u8) or an array of numbers (f32)`,
  );
}

/**
 * Copies `data` into a new tensor. `data` is a typed array or (nested) number array; `shape`
 * defaults to the nesting of `data`. Without `dtype`, a Float32Array, Float64Array, Int32Array
 * or Uint8Array gives its own dtype (f32, f64, i32, u8), numbers give f32, and any other typed
 * array is refused. Values are converted to `dtype` (for f16 and bf16, numbers are rounded to
 * nearest even, while a Uint16Array is taken as bit patterns).
 */
export function tensor(data: AnyTypedArray | NestedNumbers, shape?: Shape, opts?: TensorOptions): Tensor;
/** With `{ device: "cuda:N" }` the tensor is made on the host and copied to that device. */
export function tensor(
  data: AnyTypedArray | NestedNumbers,
  shape: Shape | undefined,
  opts: TensorOptions & { device: CudaDevice | "cuda" },
): CudaTensor;
export function tensor(
  data: AnyTypedArray | NestedNumbers,
  shape: Shape | undefined,
  opts: TensorOptions & { device: string },
): Tensor | CudaTensor;
export function tensor(
  data: AnyTypedArray | NestedNumbers,
  shape?: Shape,
  opts?: TensorOptions & { device?: string },
): Tensor | CudaTensor {
  if (opts !== null && typeof opts === "object" && "device" in opts) {
    const { device, ...rest } = opts;
    if (device === undefined) return tensor(data, shape, rest);
    const target = parseDevice(device, "tensor() option device");
    const host = tensor(data, shape, rest);
    if (target.kind === "cpu") return host;
    try {
      return toDevice(host, device);
    } finally {
      host.dispose();
    }
  }
  const view = ArrayBuffer.isView(data);
  if (view && (data instanceof DataView || data instanceof BigInt64Array || data instanceof BigUint64Array)) {
    throw new TypeError(
      `plait: tensor() argument data must be a typed array of numbers or an array of numbers, got a ${data.constructor.name}`,
    );
  }
  const dtype = tensorOptions("tensor()", opts) ?? (view ? dtypeFromData(data) : "f32");
  const flat = view ? data : flatten(data);
  const s = shape === undefined ? inferShape(data) : checkShape(shape, "tensor() argument shape");
  if (flat.length !== sizeOf(s)) {
    throw new RangeError(`plait: tensor() got ${flat.length} values for shape ${shapeStr(s)} (${sizeOf(s)} elements)`);
  }
  const t = new Tensor(s, dtype);
  const out = t.data();
  if ((dtype === "f16" || dtype === "bf16") && !(flat instanceof Uint16Array)) {
    const encode = dtype === "f16" ? numberToF16 : numberToBF16;
    for (let i = 0; i < flat.length; i++) out[i] = encode(flat[i]);
  } else out.set(flat as ArrayLike<number>);
  return t;
}

export function zeros(shape: Shape, opts?: TensorOptions): Tensor {
  const dtype = tensorOptions("zeros()", opts) ?? "f32";
  const t = new Tensor(checkShape(shape, "zeros() argument shape"), dtype);
  new Uint8Array(runtime().memory.buffer, t.ptr, t.byteLength).fill(0);
  return t;
}

function inferShape(data: AnyTypedArray | NestedNumbers): Shape {
  const shape: number[] = [];
  let v: unknown = data;
  while (Array.isArray(v) || ArrayBuffer.isView(v)) {
    shape.push((v as ArrayLike<unknown>).length);
    v = (v as ArrayLike<unknown>)[0];
  }
  return shape;
}

function flatten(data: NestedNumbers): number[] {
  if (typeof data === "number") return [data];
  const shape = inferShape(data);
  const out: number[] = [];
  const walk = (v: NestedNumbers, depth: number, path: string) => {
    if (depth === shape.length) {
      if (typeof v !== "number") throw new TypeError(`plait: tensor() data${path} is not a number: ${String(v)}`);
      out.push(v);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) {
      throw new TypeError(
        `plait: tensor() data is ragged: data${path} should be an array of ${shape[depth]}, got ${Array.isArray(v) ? `length ${v.length}` : typeof v}`,
      );
    }
    for (const [i, x] of v.entries()) walk(x, depth + 1, `${path}[${i}]`);
  };
  walk(data, 0, "");
  return out;
}

// Scalar conversions for tensor() from numbers and toArray(); bulk casts run in WASM (cast.ts).
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function bf16ToNumber(h: number): number {
  u32[0] = h << 16;
  return f32[0];
}

export function numberToBF16(x: number): number {
  f32[0] = x;
  const u = u32[0];
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff; // quiet NaN, sign kept
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

export function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

export function numberToF16(x: number): number {
  f32[0] = x; // IEEE rounding is from the f32 value, as numpy's float32 → float16 does
  const u = u32[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const frac = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (frac ? 0x200 | (frac >>> 13) : 0);
  const a = Math.abs(f32[0]);
  if (a >= 65520) return sign | 0x7c00; // rounds past the largest finite half (65504)
  if (a < 2 ** -14) return sign | roundEven(a / 2 ** -24); // subnormal half (or zero)
  const e = exp - 127; // a normal f32 here, and a normal half after rounding
  const m = roundEven(frac / 8192);
  return sign | (((e + 15) << 10) + m); // m = 1024 carries into the exponent
}

function roundEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
