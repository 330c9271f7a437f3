import type { LearningRate } from "./types.ts";

/** An allowed interval; `open` ends exclude their bound. */
export interface Range {
  min?: number;
  max?: number;
  minOpen?: boolean;
  maxOpen?: boolean;
}

function describe(r: Range): string {
  if (r.max === undefined)
    return r.min === undefined ? "a finite number" : `a finite number ${r.minOpen ? ">" : "≥"} ${r.min}`;
  return `a finite number in ${r.minOpen ? "(" : "["}${r.min ?? "-∞"}, ${r.max}${r.maxOpen ? ")" : "]"}`;
}

/** A value as an error message shows it: strings quoted, so "0.1" and 0.1 differ. */
export const show = (value: unknown): string => (typeof value === "string" ? JSON.stringify(value) : String(value));

/** `value` when it is a finite number inside `r`; otherwise an error naming `op` and `name`. */
export function checkNumber(op: string, name: string, value: unknown, r: Range = {}): number {
  const ok =
    typeof value === "number" &&
    Number.isFinite(value) &&
    (r.min === undefined || (r.minOpen ? value > r.min : value >= r.min)) &&
    (r.max === undefined || (r.maxOpen ? value < r.max : value <= r.max));
  if (!ok) throw new RangeError(`plait: ${op}: option ${name} must be ${describe(r)}, got ${show(value)}`);
  return value as number;
}

export function checkBoolean(op: string, name: string, value: unknown): boolean {
  if (typeof value !== "boolean")
    throw new TypeError(`plait: ${op}: option ${name} must be a boolean, got ${show(value)}`);
  return value;
}

export function checkLearningRate(op: string, lr: unknown): LearningRate {
  if (typeof lr === "function") return lr as LearningRate;
  return checkNumber(op, "lr", lr, { min: 0 });
}

/** The learning rate for the update after `step` real updates; a schedule's value is checked. */
export function lrAt(op: string, lr: LearningRate, step: number): number {
  if (typeof lr === "number") return lr;
  const value = lr(step);
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new RangeError(
      `plait: ${op}: the learning-rate schedule returned ${show(value)} at step ${step}, expected a finite number ≥ 0`,
    );
  }
  return value;
}
