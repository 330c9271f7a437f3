import { checkDType, type DType } from "./dtype.ts";
import { parallelFor } from "./parallel.ts";
import { runtime } from "./runtime.ts";
import { checkTensor, shapeStr, Tensor } from "./tensor.ts";

// dtype casts and the AMP unscale step, run by the WASM kernels in kernels/as/cast_*.ts and
// kernels/as/unscale.ts and split over the pool for large inputs. Rounding is to nearest even;
// ±inf and ±0 are kept; f32 → f16/bf16 turns a NaN into the quiet NaN with its sign and top
// payload bits; widening (f16/bf16 → f32) is exact, signalling NaNs included.

type FloatDType = "f64" | "f32" | "f16" | "bf16";

const BYTES: Record<FloatDType, number> = { f64: 8, f32: 4, f16: 2, bf16: 2 };

/** The kernels that convert between f32 and another float dtype, by direction. */
const FROM_F32: Record<Exclude<FloatDType, "f32">, string> = {
  f64: "as.f32_to_f64",
  f16: "as.f32_to_f16",
  bf16: "as.f32_to_bf16",
};
const TO_F32: Record<Exclude<FloatDType, "f32">, string> = {
  f64: "as.f64_to_f32",
  f16: "as.f16_to_f32",
  bf16: "as.bf16_to_f32",
};

const UNSCALE: Record<"f32" | "f16" | "bf16", string> = {
  f32: "as.unscale_f32",
  f16: "as.unscale_f16_f32",
  bf16: "as.unscale_bf16_f32",
};

/** Runs a cast kernel over n elements from byte address src to dst (threads for large n). */
function runCast(fn: string, n: number, src: number, srcBytes: number, dst: number, dstBytes: number): void {
  parallelFor(fn, n, (start, count) => [src + start * srcBytes, dst + start * dstBytes, count]);
}

type Typed = Float32Array | Uint16Array;

/** Copies `x` into WASM memory, runs `fn`, and copies the result out into a new array. */
function castArray<O extends Typed>(
  fn: string,
  x: Typed,
  inBytes: number,
  Out: { new (buffer: ArrayBufferLike, byteOffset: number, length: number): O },
  outBytes: number,
): O {
  const { arena, memory } = runtime();
  const n = x.length;
  const src = arena.alloc(n * inBytes);
  try {
    const dst = arena.alloc(n * outBytes);
    try {
      const In = x.constructor as { new (buffer: ArrayBufferLike, byteOffset: number, length: number): Typed };
      new In(memory.buffer, src, n).set(x);
      runCast(fn, n, src, inBytes, dst, outBytes);
      return new Out(memory.buffer, dst, n).slice() as O;
    } finally {
      arena.free(dst);
    }
  } finally {
    arena.free(src);
  }
}

function checkArray(op: string, x: unknown, Expected: typeof Float32Array | typeof Uint16Array): void {
  if (!(x instanceof Expected)) {
    const got = x === null ? "null" : typeof x === "object" ? (x.constructor?.name ?? "an object") : typeof x;
    throw new TypeError(`plait: ${op}: argument x must be a ${Expected.name}, got ${got}`);
  }
}

/** f32 → f16 bit patterns, rounded to nearest even (IEEE binary16). */
export function toF16(x: Float32Array): Uint16Array {
  checkArray("toF16", x, Float32Array);
  return castArray("as.f32_to_f16", x, 4, Uint16Array, 2);
}

/** f16 bit patterns → f32, exact. */
export function fromF16(x: Uint16Array): Float32Array {
  checkArray("fromF16", x, Uint16Array);
  return castArray("as.f16_to_f32", x, 2, Float32Array, 4);
}

/** f32 → bf16 bit patterns, rounded to nearest even. */
export function toBF16(x: Float32Array): Uint16Array {
  checkArray("toBF16", x, Float32Array);
  return castArray("as.f32_to_bf16", x, 4, Uint16Array, 2);
}

/** bf16 bit patterns → f32, exact. */
export function fromBF16(x: Uint16Array): Float32Array {
  checkArray("fromBF16", x, Uint16Array);
  return castArray("as.bf16_to_f32", x, 2, Float32Array, 4);
}

const isFloatDType = (d: DType): d is FloatDType => d in BYTES;

/**
 * A new tensor holding `t` converted to `dtype` (a copy when the dtype is the same). Supports
 * every pair of f64, f32, f16 and bf16 that rounds once: f16 ↔ bf16 and f16/bf16 → f64 go
 * through an exact f32 step; f64 → f16/bf16 would round twice and is refused.
 */
export function cast(t: Tensor, dtype: DType): Tensor {
  checkTensor("cast", "t", t);
  const to = checkDType(dtype, "cast: argument dtype");
  const from = t.dtype;
  if (!isFloatDType(from) || !isFloatDType(to)) {
    throw new TypeError(`plait: cast: ${from} → ${to} is not supported; cast converts between f64, f32, f16 and bf16`);
  }
  if (from === "f64" && to !== "f64" && to !== "f32") {
    throw new TypeError(
      `plait: cast: f64 → ${to} is not supported (through f32 it would round twice); cast to f32 first if that is acceptable`,
    );
  }
  const out = new Tensor(t.shape, to);
  try {
    if (from === to) runtime().k.as.copy_bytes(out.ptr, t.ptr, t.byteLength);
    else if (from === "f32") runCast(FROM_F32[to as keyof typeof FROM_F32], t.size, t.ptr, 4, out.ptr, BYTES[to]);
    else if (to === "f32") runCast(TO_F32[from], t.size, t.ptr, BYTES[from], out.ptr, 4);
    else {
      const wide = new Tensor(t.shape, "f32"); // exact: f16 and bf16 widen to f32 without rounding
      try {
        runCast(TO_F32[from], t.size, t.ptr, BYTES[from], wide.ptr, 4);
        runCast(FROM_F32[to as keyof typeof FROM_F32], t.size, wide.ptr, 4, out.ptr, BYTES[to]);
      } finally {
        wide.dispose();
      }
    }
  } catch (e) {
    out.dispose();
    throw e;
  }
  return out;
}

/**
 * The AMP unscale step: multiplies every element by inv = f32(1 / scale) and returns whether
 * every element was finite before. In place for an f32 `t`; with `out` (f32, same shape), reads
 * `t` (f32, f16 or bf16: half-precision gradients are widened in the same pass) and writes `out`.
 */
export function unscaleAndCheckFinite(t: Tensor, scale: number, out?: Tensor): boolean {
  const op = "unscaleAndCheckFinite";
  checkTensor(op, "t", t);
  if (t.dtype !== "f32" && t.dtype !== "f16" && t.dtype !== "bf16") {
    throw new TypeError(`plait: ${op}: argument t has dtype ${t.dtype}, expected f32, f16 or bf16`);
  }
  const inv = typeof scale === "number" ? Math.fround(1 / scale) : Number.NaN;
  if (!(scale > 0) || !Number.isFinite(scale) || !(inv > 0) || !Number.isFinite(inv)) {
    throw new RangeError(
      `plait: ${op}: argument scale must be a finite number > 0 whose f32 reciprocal is finite and non-zero, got ${String(scale)}`,
    );
  }
  if (out === undefined) {
    if (t.dtype !== "f32") {
      throw new TypeError(
        `plait: ${op}: argument t has dtype ${t.dtype}; in place needs f32 (pass an f32 out to widen ${t.dtype} gradients)`,
      );
    }
    out = t;
  } else {
    checkTensor(op, "out", out);
    if (out.dtype !== "f32") throw new TypeError(`plait: ${op}: argument out has dtype ${out.dtype}, expected f32`);
    if (shapeStr(out.shape) !== shapeStr(t.shape)) {
      throw new RangeError(
        `plait: ${op}: argument out has shape ${shapeStr(out.shape)}, expected ${shapeStr(t.shape)} like t`,
      );
    }
  }
  const { arena, memory, pool } = runtime();
  const src = t.ptr;
  const dst = out.ptr;
  const inBytes = BYTES[t.dtype];
  const flags = arena.alloc(4 * pool.size); // one finite flag per job: pool threads return nothing
  try {
    let jobs = 0;
    parallelFor(UNSCALE[t.dtype], t.size, (start, count) => [
      src + start * inBytes,
      dst + start * 4,
      count,
      inv,
      flags + 4 * jobs++,
    ]);
    return new Int32Array(memory.buffer, flags, jobs).every((ok) => ok === 1);
  } finally {
    arena.free(flags);
  }
}
