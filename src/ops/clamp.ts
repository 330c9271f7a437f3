import * as core from "../core/clamp.ts";
import type { Tensor } from "../core/tensor.ts";
import { checkDTypeIn, checkInput } from "./check.ts";
import { tapeFor } from "./tape.ts";

/**
 * min(max(x, lo), hi) elementwise (f32, f64); NaN stays NaN. Gradient: g where lo ≤ x ≤ hi
 * (the bounds included, as torch does) and where x is NaN (clamp passes NaN through like the
 * identity), 0 where x was clamped. For f32, lo and hi are compared as the kernel uses them:
 * rounded to f32.
 */
export function clamp(x: Tensor, lo: number, hi: number): Tensor {
  const op = "clamp";
  checkInput(op, "x", x);
  const dtype = checkDTypeIn(op, "x", x, ["f32", "f64"]);
  for (const [name, v] of [
    ["lo", lo],
    ["hi", hi],
  ] as const) {
    if (typeof v !== "number") throw new TypeError(`plait: ${op}: argument ${name} must be a number, got ${typeof v}`);
  }
  const out = core.clamp(x, lo, hi);
  const tape = tapeFor(x);
  if (tape) {
    const l = dtype === "f32" ? Math.fround(lo) : lo;
    const h = dtype === "f32" ? Math.fround(hi) : hi;
    tape.record(
      out,
      (g, sink) => {
        const dx = sink.buffer(x);
        if (!dx) return;
        const xs = x.data();
        const gs = g.data();
        const ds = dx.out.data();
        for (let i = 0; i < ds.length; i++) {
          const v = xs[i];
          const d = v < l || v > h ? 0 : gs[i];
          ds[i] = dx.accumulate ? ds[i] + d : d;
        }
      },
      [x],
    );
  }
  return out;
}
