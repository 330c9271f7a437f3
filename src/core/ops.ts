// The non-differentiable tensor ops of src/core, for `import { core } from "plait"`: the same
// kernels the differentiable ops run on, with their extra options (out buffers, accumulate,
// transposes) and JS-number reductions. Each one refuses a tensor that a valueAndGrad tape is
// recording (taped.ts) and names the differentiable op to use instead: inside a loss function
// they would otherwise give a zero gradient without a word.
import * as act from "./activation.ts";
import * as actBack from "./activation-backward.ts";
import * as arith from "./arith.ts";
import * as casts from "./cast.ts";
import * as clamps from "./clamp.ts";
import * as gemm from "./gemm.ts";
import * as reduce from "./reduce.ts";
import * as softmaxes from "./softmax.ts";
import { refusingTaped as raw } from "./taped.ts";
import * as unary from "./unary.ts";

export { full, ones } from "./fill.ts";
export type { GemmOptions } from "./gemm.ts";
export { type GemmKernelChoice, type GemmKernelInfo, gemmKernel } from "./gemmKernel.ts";

const use = (name: string) => `use ${name} from plait`;
const useReduction = (name: string) => `use ${name} from plait (a scalar tensor)`;
const BACKWARD = "a backward kernel records nothing on the tape; call it outside the loss function";
const OUTSIDE = "read it outside the loss function (on the loss or the grads valueAndGrad returns)";

const X_OUT = ["x", "out"] as const;
const AB_OUT = ["a", "b", "out"] as const;

export const relu: typeof act.relu = raw("relu", X_OUT, use("relu"), act.relu);
export const gelu: typeof act.gelu = raw("gelu", X_OUT, use("gelu"), act.gelu);
export const tanh: typeof act.tanh = raw("tanh", X_OUT, use("tanh"), act.tanh);
export const sigmoid: typeof act.sigmoid = raw("sigmoid", X_OUT, use("sigmoid"), act.sigmoid);

export const reluBackward: typeof actBack.reluBackward = raw(
  "reluBackward",
  ["x", "dy", "out"],
  BACKWARD,
  actBack.reluBackward,
);
export const geluBackward: typeof actBack.geluBackward = raw(
  "geluBackward",
  ["x", "dy", "out"],
  BACKWARD,
  actBack.geluBackward,
);
export const tanhBackward: typeof actBack.tanhBackward = raw(
  "tanhBackward",
  ["y", "dy", "out"],
  BACKWARD,
  actBack.tanhBackward,
);
export const sigmoidBackward: typeof actBack.sigmoidBackward = raw(
  "sigmoidBackward",
  ["y", "dy", "out"],
  BACKWARD,
  actBack.sigmoidBackward,
);

export const add: typeof arith.add = raw("add", AB_OUT, use("add"), arith.add);
export const sub: typeof arith.sub = raw("sub", AB_OUT, use("sub"), arith.sub);
export const mul: typeof arith.mul = raw("mul", AB_OUT, use("mul"), arith.mul);
export const div: typeof arith.div = raw("div", AB_OUT, use("div"), arith.div);
export const scale: typeof arith.scale = raw("scale", ["x", "s", "out"], use("scale"), arith.scale);
export const axpy: typeof arith.axpy = raw(
  "axpy",
  ["alpha", "x", "y"],
  "use add(scale(x, alpha), y) from plait",
  arith.axpy,
);
export const fma: typeof arith.fma = raw("fma", ["a", "b", "c", "out"], use("fma"), arith.fma);

export const cast: typeof casts.cast = raw("cast", ["t", "dtype"], use("cast"), casts.cast);
export const unscaleAndCheckFinite: typeof casts.unscaleAndCheckFinite = raw(
  "unscaleAndCheckFinite",
  ["t", "scale", "out"],
  OUTSIDE,
  casts.unscaleAndCheckFinite,
);

export const clamp: typeof clamps.clamp = raw("clamp", ["x", "lo", "hi", "out"], use("clamp"), clamps.clamp);

export const matmul: typeof gemm.matmul = raw(
  "matmul",
  ["a", "b", "opts"],
  "use matmul or linear from plait",
  gemm.matmul,
);

export const sum: typeof reduce.sum = raw("sum", ["x"], useReduction("sum"), reduce.sum);
export const mean: typeof reduce.mean = raw("mean", ["x"], useReduction("mean"), reduce.mean);
export const sumSquares: typeof reduce.sumSquares = raw(
  "sumSquares",
  ["x"],
  useReduction("sumSquares"),
  reduce.sumSquares,
);
export const max: typeof reduce.max = raw("max", ["x"], useReduction("max"), reduce.max);
export const maxAbs: typeof reduce.maxAbs = raw("maxAbs", ["x"], useReduction("maxAbs"), reduce.maxAbs);
export const allFinite: typeof reduce.allFinite = raw("allFinite", ["x"], OUTSIDE, reduce.allFinite);

export const softmax: typeof softmaxes.softmax = raw("softmax", X_OUT, use("softmax"), softmaxes.softmax);
export const logSoftmax: typeof softmaxes.logSoftmax = raw(
  "logSoftmax",
  X_OUT,
  use("logSoftmax"),
  softmaxes.logSoftmax,
);

export const exp: typeof unary.exp = raw("exp", X_OUT, use("exp"), unary.exp);
export const log: typeof unary.log = raw("log", X_OUT, use("log"), unary.log);
