import type { DType } from "../core/dtype.ts";
import { checkShape, type Shape, shapeStr, type Tensor, tensor, zeros } from "../core/tensor.ts";

/** A seeded source of random numbers (the Rng of src/data/rng.ts is one). */
export interface RandomSource {
  /** Uniform in [0, 1). */
  uniform(): number;
  /** Standard normal. */
  normal(): number;
}

export interface InitOptions {
  /** Element type of the new tensor (default f32). */
  dtype?: DType;
  /** torch.nn.init.calculate_gain's value for the layer's nonlinearity. Default: He √2 (ReLU), Xavier 1. */
  gain?: number;
}

// Weights are [fanIn, fanOut]: a dense layer computes x · w with x [batch, fanIn]. (torch stores
// Linear weights as [out, in]; the fans are the same numbers.)

/** He/Kaiming normal (torch.nn.init.kaiming_normal_, mode fan_in): N(0, std²), std = gain / √fanIn. */
export function heNormal(rng: RandomSource, shape: Shape, opts: InitOptions = {}): Tensor {
  const { fanIn } = fans("heNormal", shape);
  const std = gainOf("heNormal", opts, Math.SQRT2) / Math.sqrt(fanIn);
  return fill(shape, opts, () => rng.normal() * std);
}

/** He/Kaiming uniform (torch.nn.init.kaiming_uniform_, mode fan_in): U(−b, b), b = gain · √(3 / fanIn). */
export function heUniform(rng: RandomSource, shape: Shape, opts: InitOptions = {}): Tensor {
  const { fanIn } = fans("heUniform", shape);
  const bound = gainOf("heUniform", opts, Math.SQRT2) * Math.sqrt(3 / fanIn);
  return fill(shape, opts, () => (2 * rng.uniform() - 1) * bound);
}

/** Glorot/Xavier uniform (torch.nn.init.xavier_uniform_): U(−a, a), a = gain · √(6 / (fanIn + fanOut)). */
export function xavierUniform(rng: RandomSource, shape: Shape, opts: InitOptions = {}): Tensor {
  const { fanIn, fanOut } = fans("xavierUniform", shape);
  const bound = gainOf("xavierUniform", opts, 1) * Math.sqrt(6 / (fanIn + fanOut));
  return fill(shape, opts, () => (2 * rng.uniform() - 1) * bound);
}

/** Glorot/Xavier normal (torch.nn.init.xavier_normal_): N(0, std²), std = gain · √(2 / (fanIn + fanOut)). */
export function xavierNormal(rng: RandomSource, shape: Shape, opts: InitOptions = {}): Tensor {
  const { fanIn, fanOut } = fans("xavierNormal", shape);
  const std = gainOf("xavierNormal", opts, 1) * Math.sqrt(2 / (fanIn + fanOut));
  return fill(shape, opts, () => rng.normal() * std);
}

/** All zeros (biases). */
export function zerosInit(shape: Shape, opts: { dtype?: DType } = {}): Tensor {
  return zeros(checkShape(shape, "zerosInit: argument shape"), { dtype: opts.dtype ?? "f32" });
}

function fans(op: string, shape: Shape): { fanIn: number; fanOut: number } {
  const s = checkShape(shape, `${op}: argument shape`);
  if (s.length !== 2 || s[0] === 0 || s[1] === 0) {
    throw new RangeError(`plait: ${op}: argument shape must be [fanIn, fanOut] with both > 0, got ${shapeStr(s)}`);
  }
  return { fanIn: s[0], fanOut: s[1] };
}

function gainOf(op: string, opts: InitOptions, fallback: number): number {
  const g = opts.gain ?? fallback;
  if (!(typeof g === "number" && Number.isFinite(g) && g > 0)) {
    throw new RangeError(`plait: ${op}: option gain must be a finite number > 0, got ${g}`);
  }
  return g;
}

/** Initialisation runs once per parameter, so the values are drawn in JS and copied in at once. */
function fill(shape: Shape, opts: InitOptions, draw: () => number): Tensor {
  const values = new Float64Array(shape[0] * shape[1]);
  for (let i = 0; i < values.length; i++) values[i] = draw();
  return tensor(values, shape, { dtype: opts.dtype ?? "f32" });
}
