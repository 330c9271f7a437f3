import { checkArg, outLike, runElementwise } from "./elementwise.ts";
import type { Tensor } from "./tensor.ts";

/** min(max(x, lo), hi) elementwise (f32, f64), into `out` (may be x) or a new tensor; NaN stays NaN. */
export function clamp(x: Tensor, lo: number, hi: number, out?: Tensor): Tensor {
  const t = checkArg("clamp", "x", x, ["f32", "f64"]);
  if (!(lo <= hi)) throw new RangeError(`plait: clamp: expected lo ≤ hi, got lo = ${lo}, hi = ${hi}`);
  const o = outLike("clamp", t, out);
  runElementwise(`as.clamp_${t.dtype}`, [t, lo, hi, o], t.size);
  return o;
}
