import { isHalf } from "../core/castInto.ts";
import { shapeStr, Tensor } from "../core/tensor.ts";
import { cast } from "./cast.ts";
import { checkDTypeIn, checkInput } from "./check.ts";
import { tapeFor } from "./tape.ts";

export interface BatchNormOptions {
  /**
   * Training mode: normalise with this batch's statistics (and update the running ones, when
   * given). Otherwise (evaluation) normalise with runningMean and runningVar, which are required.
   */
  train: boolean;
  /** Per-channel running mean [C], updated in place in training mode. */
  runningMean?: Tensor;
  /** Per-channel running variance [C] (unbiased, as torch keeps it), updated in place in training mode. */
  runningVar?: Tensor;
  /** running ← (1 − momentum) · running + momentum · batch statistic. Default 0.1 (torch's). */
  momentum?: number;
  /** Added to the variance before the square root. Default 1e-5. */
  eps?: number;
}

const OP = "batchNorm";
const KNOWN = ["train", "runningMean", "runningVar", "momentum", "eps"];

type Floats = Float32Array | Float64Array;

/**
 * Batch normalisation over axis 1 of x [N, C, ...] (torch.nn.functional.batch_norm): each
 * channel c is normalised by a mean and a variance over the batch and every spatial position,
 * then scaled by gamma[c] and shifted by beta[c].
 *
 * In training mode the statistics are this batch's (the biased variance normalises, as in
 * torch), and runningMean/runningVar, when given, are updated in place with the momentum (the
 * running variance from the unbiased batch variance). They are the model's buffers: state, not
 * params, so no gradient reaches them and no optimizer touches them; `valueAndGradWithBuffers`
 * keeps them in the train state, where checkpoints save them. In evaluation mode the running
 * statistics normalise and are left as they are.
 *
 * x is f32 or f64; gamma and beta have x's dtype or are f16/bf16 params (a 16-true model),
 * widened to x's dtype (differentiably); running statistics are f32 or f64. Statistics are
 * computed in float64 either way.
 */
export function batchNorm(x: Tensor, gamma: Tensor, beta: Tensor, opts: BatchNormOptions): Tensor {
  checkInput(OP, "x", x);
  checkInput(OP, "gamma", gamma);
  checkInput(OP, "beta", beta);
  const dtype = checkDTypeIn(OP, "x", x, ["f32", "f64"]);
  if (opts === null || typeof opts !== "object") {
    throw new TypeError(
      `plait: ${OP}: argument opts must be an object { train, runningMean?, runningVar?, momentum?, eps? }, got ${opts}`,
    );
  }
  for (const key of Object.keys(opts)) {
    if (!KNOWN.includes(key))
      throw new TypeError(`plait: ${OP}: unknown option ${key}; known options: ${KNOWN.join(", ")}`);
  }
  const { train, runningMean, runningVar, momentum = 0.1, eps = 1e-5 } = opts;
  if (typeof train !== "boolean")
    throw new TypeError(`plait: ${OP}: option train must be a boolean, got ${JSON.stringify(train)}`);
  if (x.ndim < 2)
    throw new RangeError(`plait: ${OP}: argument x must be [batch, channels, ...], got shape ${shapeStr(x.shape)}`);
  const c = x.shape[1];
  for (const [name, t] of [
    ["gamma", gamma],
    ["beta", beta],
    ["runningMean", runningMean],
    ["runningVar", runningVar],
  ] as const) {
    if (t === undefined) continue;
    if (name.startsWith("running")) checkInput(OP, name, t);
    if (t.ndim !== 1 || t.shape[0] !== c) {
      throw new RangeError(
        `plait: ${OP}: ${name} has shape ${shapeStr(t.shape)}, expected [${c}] (the channels of x ${shapeStr(x.shape)})`,
      );
    }
    const ok = name.startsWith("running")
      ? t.dtype === "f32" || t.dtype === "f64"
      : t.dtype === dtype || isHalf(t.dtype);
    if (!ok)
      throw new TypeError(
        `plait: ${OP}: ${name} has dtype ${t.dtype}, expected ${name.startsWith("running") ? "f32 or f64" : `${dtype} (or f16/bf16)`}`,
      );
  }
  if ((runningMean === undefined) !== (runningVar === undefined)) {
    throw new TypeError(`plait: ${OP}: give both runningMean and runningVar, or neither`);
  }
  if (!train && runningMean === undefined) {
    throw new TypeError(
      `plait: ${OP}: evaluation (train: false) normalises with the running statistics: give runningMean and runningVar`,
    );
  }
  if (!(typeof momentum === "number" && momentum >= 0 && momentum <= 1)) {
    throw new RangeError(`plait: ${OP}: option momentum must be a number in [0, 1], got ${momentum}`);
  }
  if (!(typeof eps === "number" && eps >= 0 && Number.isFinite(eps))) {
    throw new RangeError(`plait: ${OP}: option eps must be a finite number ≥ 0, got ${eps}`);
  }
  // half params (16-true) are widened, differentiably; the copies are freed below when nothing records
  const widened: Tensor[] = [];
  if (isHalf(gamma.dtype)) {
    gamma = cast(gamma, dtype);
    widened.push(gamma);
  }
  if (isHalf(beta.dtype)) {
    beta = cast(beta, dtype);
    widened.push(beta);
  }

  const n = x.shape[0];
  const s = x.size / Math.max(1, n * c); // spatial positions per channel and sample
  const count = n * s;
  const xs = x.data() as Floats;
  const mean = new Float64Array(c);
  const rstd = new Float64Array(c);
  for (let ch = 0; ch < c; ch++) {
    let mu: number;
    let v: number;
    if (train) {
      let t = 0;
      for (let b = 0; b < n; b++) for (let i = (b * c + ch) * s, e = i + s; i < e; i++) t += xs[i];
      mu = t / count;
      let q = 0;
      for (let b = 0; b < n; b++) {
        for (let i = (b * c + ch) * s, e = i + s; i < e; i++) {
          const d = xs[i] - mu;
          q += d * d;
        }
      }
      v = q / count;
      if (runningMean && runningVar) {
        const rm = runningMean.data() as Floats;
        const rv = runningVar.data() as Floats;
        rm[ch] = (1 - momentum) * rm[ch] + momentum * mu;
        rv[ch] = (1 - momentum) * rv[ch] + momentum * (count > 1 ? q / (count - 1) : v);
      }
    } else {
      mu = (runningMean!.data() as Floats)[ch];
      v = (runningVar!.data() as Floats)[ch];
    }
    mean[ch] = mu;
    rstd[ch] = 1 / Math.sqrt(v + eps);
  }
  const out = new Tensor(x.shape, dtype);
  const ys = out.data() as Floats;
  const gs = gamma.data() as Floats;
  const bs = beta.data() as Floats;
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const a = rstd[ch] * gs[ch];
      const sh = bs[ch] - mean[ch] * a;
      for (let i = (b * c + ch) * s, e = i + s; i < e; i++) ys[i] = xs[i] * a + sh;
    }
  }
  const tape = tapeFor(x, gamma, beta);
  if (!tape) for (const t of widened) t.dispose();
  if (tape) {
    tape.record(
      out,
      (grad, sink) => {
        const g = grad.data() as Floats;
        const sumG = new Float64Array(c);
        const sumGX = new Float64Array(c); // Σ g · x̂
        for (let b = 0; b < n; b++) {
          for (let ch = 0; ch < c; ch++) {
            const mu = mean[ch];
            const r = rstd[ch];
            let sg = 0;
            let sgx = 0;
            for (let i = (b * c + ch) * s, e = i + s; i < e; i++) {
              sg += g[i];
              sgx += g[i] * (xs[i] - mu) * r;
            }
            sumG[ch] += sg;
            sumGX[ch] += sgx;
          }
        }
        const put = (t: Tensor, v: Float64Array) => {
          const d = sink.buffer(t);
          if (!d) return;
          const o = d.out.data() as Floats;
          for (let ch = 0; ch < c; ch++) o[ch] = d.accumulate ? o[ch] + v[ch] : v[ch];
        };
        put(gamma, sumGX);
        put(beta, sumG);
        const dx = sink.buffer(x);
        if (!dx) return;
        const o = dx.out.data() as Floats;
        for (let b = 0; b < n; b++) {
          for (let ch = 0; ch < c; ch++) {
            const r = rstd[ch];
            const k = gs[ch] * r;
            // train: dx = γ·r·(g − Σg/M − x̂·Σ(g·x̂)/M); eval: the statistics are constants, dx = γ·r·g
            const mg = train ? sumG[ch] / count : 0;
            const mgx = train ? sumGX[ch] / count : 0;
            const mu = mean[ch];
            for (let i = (b * c + ch) * s, e = i + s; i < e; i++) {
              const v = k * (g[i] - mg - (xs[i] - mu) * r * mgx);
              o[i] = dx.accumulate ? o[i] + v : v;
            }
          }
        }
      },
      [x, gamma],
    );
  }
  return out;
}
