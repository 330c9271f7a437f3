/** Element types a tensor can hold. f16 and bf16 are stored as their 16-bit patterns. */
export type DType = "f64" | "f32" | "f16" | "bf16" | "i32" | "u8";

export const DTYPES: readonly DType[] = ["f64", "f32", "f16", "bf16", "i32", "u8"];

export type TypedArrayFor<D extends DType> = D extends "f64"
  ? Float64Array
  : D extends "f32"
    ? Float32Array
    : D extends "f16" | "bf16"
      ? Uint16Array
      : D extends "i32"
        ? Int32Array
        : Uint8Array;

export type AnyTypedArray = Float64Array | Float32Array | Uint16Array | Int32Array | Uint8Array;

const BYTES: Record<DType, number> = { f64: 8, f32: 4, f16: 2, bf16: 2, i32: 4, u8: 1 };
const ARRAYS = {
  f64: Float64Array,
  f32: Float32Array,
  f16: Uint16Array,
  bf16: Uint16Array,
  i32: Int32Array,
  u8: Uint8Array,
} as const;

export function bytesOf(dtype: DType): number {
  return BYTES[dtype];
}

/** A typed-array class that views `length` elements of a buffer (shared or not) from `byteOffset`. */
export type TypedArrayClass = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => AnyTypedArray;

export function arrayTypeOf(dtype: DType): TypedArrayClass {
  return ARRAYS[dtype];
}

export function checkDType(value: unknown, what: string): DType {
  if (typeof value === "string" && (DTYPES as readonly string[]).includes(value)) return value as DType;
  throw new TypeError(`plait: ${what} must be one of ${DTYPES.join(", ")}, got ${JSON.stringify(value)}`);
}

export const isFloat = (d: DType) => d === "f64" || d === "f32" || d === "f16" || d === "bf16";
