import type { HalfDType } from "../core/castInto.ts";
import type { Tensor } from "../core/tensor.ts";

/** Lightning's precision names (its 2.x vocabulary). */
export type Precision = "64-true" | "32-true" | "16-mixed" | "bf16-mixed" | "16-true" | "bf16-true";
export type MixedPrecision = "16-mixed" | "bf16-mixed";

export const PRECISIONS: readonly Precision[] = [
  "64-true",
  "32-true",
  "16-mixed",
  "bf16-mixed",
  "16-true",
  "bf16-true",
];

/** `value` when it is one of `allowed`; otherwise an error that lists them. */
export function checkPrecision<P extends Precision>(op: string, value: unknown, allowed: readonly P[]): P {
  if (typeof value === "string" && (allowed as readonly string[]).includes(value)) return value as P;
  const got = typeof value === "string" ? JSON.stringify(value) : String(value);
  const list = allowed.map((p) => JSON.stringify(p)).join(", ");
  throw new RangeError(`plait: ${op}: precision must be one of ${list}, got ${got}`);
}

/** The 16-bit dtype of a "16-…" or "bf16-…" precision. */
export const halfDTypeOf = (p: Precision): HalfDType => (p.startsWith("bf16") ? "bf16" : "f16");

/** Which master leaves get a half compute copy. */
export type CastPolicy = (leaf: Tensor) => boolean;

/**
 * Mixed precision's policy: the f32 leaves of two or more dimensions (matmul weights,
 * embedding tables) get a half copy; 1-D leaves (biases, norm gains) stay f32, as autocast
 * keeps elementwise and normalisation work in f32.
 */
export const mixedPolicy: CastPolicy = (leaf) => leaf.dtype === "f32" && leaf.ndim >= 2;

/** The true half precisions' policy (master-weights mode): every f32 leaf computes in half. */
export const wholePolicy: CastPolicy = (leaf) => leaf.dtype === "f32";
