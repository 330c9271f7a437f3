import * as arith from "../core/arith.ts";
import * as portable from "../core/portableMath.ts";
import { deterministic } from "../core/runtime.ts";
import { Tensor } from "../core/tensor.ts";
import * as core from "../core/unary.ts";
import { checkDTypeIn, checkInput } from "./check.ts";
import { tapeFor } from "./tape.ts";

// exp and log, f32 and f64. f32 runs the SIMD kernels (≤ 1 ulp, docs/design.md); f64 has no
// wasm kernel, so it runs Math.exp / Math.log over the elements on the calling thread (in
// deterministic mode core/portableMath.ts's, the same bits on V8 and JavaScriptCore).

const FLOATS = ["f32", "f64"] as const;

/** e^x elementwise. Gradient: g · e^x (the saved output). */
export function exp(x: Tensor): Tensor {
  const op = "exp";
  checkInput(op, "x", x);
  const y =
    checkDTypeIn(op, "x", x, FLOATS) === "f32" ? core.exp(x) : mapF64(x, deterministic() ? portable.exp : Math.exp);
  const tape = tapeFor(x);
  if (tape) {
    tape.record(
      y,
      (g, sink) => {
        const dx = sink.buffer(x);
        if (!dx) return;
        if (dx.accumulate) arith.fma(g, y, dx.out, dx.out);
        else arith.mul(g, y, dx.out);
      },
      [y],
    );
  }
  return y;
}

/** ln x elementwise (log(±0) = −inf, log(x < 0) = NaN). Gradient: g / x. */
export function log(x: Tensor): Tensor {
  const op = "log";
  checkInput(op, "x", x);
  const y =
    checkDTypeIn(op, "x", x, FLOATS) === "f32" ? core.log(x) : mapF64(x, deterministic() ? portable.log : Math.log);
  const tape = tapeFor(x);
  if (tape) tape.record(y, (g, sink) => sink.assign(x, (dx) => arith.div(g, x, dx)), [x]);
  return y;
}

/** f applied to every element of an f64 tensor, into a new one. */
function mapF64(x: Tensor, f: (v: number) => number): Tensor {
  const out = new Tensor(x.shape, "f64");
  const src = x.data();
  const dst = out.data();
  for (let i = 0; i < dst.length; i++) dst[i] = f(src[i]);
  return out;
}
