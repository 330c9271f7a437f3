// Casts between f32 and the half dtypes into a given buffer (the kernels of kernels/as/cast_*.ts,
// threaded for large tensors): what mixed precision uses for its compute copies, which are cast
// in place step after step instead of reallocated. f32 → half rounds to nearest even; half → f32
// is exact.
import type { DType } from "./dtype.ts";
import { parallelFor } from "./parallel.ts";
import { shapeStr, Tensor } from "./tensor.ts";

export type HalfDType = "f16" | "bf16";

export const isHalf = (d: DType): d is HalfDType => d === "f16" || d === "bf16";

/** dst = src converted (f32 → f16/bf16 or f16/bf16 → f32), same shape. */
export function castInto(src: Tensor, dst: Tensor): void {
  const narrowing = src.dtype === "f32" && isHalf(dst.dtype);
  if (!narrowing && !(isHalf(src.dtype) && dst.dtype === "f32")) {
    throw new TypeError(`plait: castInto: ${src.dtype} → ${dst.dtype} is not supported; it casts f32 ↔ f16/bf16`);
  }
  if (src.size !== dst.size) {
    throw new RangeError(
      `plait: castInto: argument dst has shape ${shapeStr(dst.shape)}, expected ${shapeStr(src.shape)} like src`,
    );
  }
  const [s, d] = [src.ptr, dst.ptr];
  const [sb, db] = narrowing ? [4, 2] : [2, 4];
  parallelFor(`as.${src.dtype}_to_${dst.dtype}`, src.size, (i, n) => [s + i * sb, d + i * db, n]);
}

/** A new tensor holding `x` (f32, or already `dtype`) in `dtype`: x itself when it already is. */
export function toDType(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  const out = new Tensor(x.shape, dtype);
  castInto(x, out);
  return out;
}

/**
 * A half copy of an f32 tensor that is cast when first read (through `ptr`: a kernel, `data()`,
 * any op), not when made: mixed precision's compute copies (precision/computeCopies.ts). A
 * product on the system BLAS that meets one not cast yet rounds its source through the half
 * dtype in one pass (`roundThrough`) instead of casting it and widening the cast, so a weight
 * that only such products read is never cast at all. The source must stay unchanged until the
 * copy is read or disposed (computeCopies frees its copies when the step ends, before the
 * optimizer writes the masters); reading a copy whose source was disposed throws.
 */
export class HalfCopy extends Tensor {
  #source: Tensor | undefined;

  constructor(source: Tensor, dtype: HalfDType) {
    if (source.dtype !== "f32" || !isHalf(dtype)) {
      throw new TypeError(
        `plait: HalfCopy: casts an f32 tensor to f16 or bf16, got ${source.describe()} → ${String(dtype)}`,
      );
    }
    super(source.shape, dtype);
    this.#source = source;
  }

  /** The f32 tensor this copy will hold in half while it has not been cast; undefined after. */
  get pending(): Tensor | undefined {
    return this.#source;
  }

  override get ptr(): number {
    const source = this.#source;
    if (source !== undefined) {
      this.#source = undefined; // castInto reads this.ptr
      try {
        castInto(source, this);
      } catch (e) {
        this.#source = source;
        throw e;
      }
    }
    return super.ptr;
  }

  override dispose(): void {
    this.#source = undefined;
    super.dispose();
  }
}

/**
 * A new f32 tensor holding `x`'s values in `half`: an f32 `x` rounded to nearest even through
 * the half dtype in one pass (kernels/as/round_half.ts; the bits of castInto to half and back),
 * a `half` one widened (exactly), a HalfCopy not cast yet rounded from its source. What a half
 * product multiplies, for a GEMM that takes only f32 (the system BLAS).
 */
export function roundThrough(x: Tensor, half: HalfDType): Tensor {
  if (x.dtype !== "f32" && x.dtype !== half) {
    throw new TypeError(`plait: roundThrough: argument x has dtype ${x.dtype}, expected f32 or ${half}`);
  }
  const from = (x instanceof HalfCopy ? x.pending : undefined) ?? x;
  const out = new Tensor(x.shape, "f32");
  try {
    if (from.dtype === half) castInto(from, out);
    else {
      const [s, d] = [from.ptr, out.ptr];
      parallelFor(`as.f32_round_${half}`, x.size, (i, n) => [s + i * 4, d + i * 4, n]);
    }
  } catch (e) {
    out.dispose();
    throw e;
  }
  return out;
}
