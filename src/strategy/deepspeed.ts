import { withAMP } from "../precision/amp.ts";
import { deepspeedScaler, type LossScaler, staticScaler } from "../precision/scaler.ts";
import { withAccumulation } from "../step/accumulate.ts";
import { withGradClip } from "../step/clip.ts";
import type { Step, StepLike } from "../step/contract.ts";
import { withDDP } from "./ddp.ts";
import { withZeRO, type ZeROStage } from "./zero.ts";

/** The keys of a DeepSpeed JSON config that plait maps (DeepSpeed's own names and meanings). */
export interface DeepSpeedConfig {
  train_batch_size?: number;
  train_micro_batch_size_per_gpu?: number;
  gradient_accumulation_steps?: number;
  /** Max global gradient norm; 0 turns clipping off. DeepSpeed's default (since #8068) is 1.0. */
  gradient_clipping?: number;
  /** stage 0 is plain data parallel (withDDP); 1–3 are withZeRO's stages. Default 0. */
  zero_optimization?: { stage?: 0 | 1 | 2 | 3 } & Record<string, unknown>;
  fp16?: {
    enabled?: boolean;
    /** 0 (default): dynamic loss scaling; > 0: this static scale. */
    loss_scale?: number;
    initial_scale_power?: number;
    loss_scale_window?: number;
    hysteresis?: number;
    consecutive_hysteresis?: boolean;
    min_loss_scale?: number;
  };
  bf16?: { enabled?: boolean };
}

/** What a DeepSpeed config turns into: the composed step and the batch sizes to feed it. */
export interface DeepSpeedPlan<B> {
  /** withGradClip(strategy(withAMP(withAccumulation(step)))), each only where the config asks for it. */
  step: Step<B>;
  /** Samples per rank per call of the step (train_micro_batch_size_per_gpu). */
  microBatchSize: number | undefined;
  gradientAccumulationSteps: number;
  /** micro batch × accumulation steps × world size, when known. */
  trainBatchSize: number | undefined;
}

const OP = "withDeepSpeed";
const TOP_KEYS = [
  "train_batch_size",
  "train_micro_batch_size_per_gpu",
  "gradient_accumulation_steps",
  "gradient_clipping",
  "zero_optimization",
  "fp16",
  "bf16",
];
/** zero_optimization keys that tune DeepSpeed's communication only: accepted, with no effect here. */
const ZERO_TUNING = [
  "reduce_bucket_size",
  "allgather_bucket_size",
  "overlap_comm",
  "contiguous_gradients",
  "reduce_scatter",
  "allgather_partitions",
  "round_robin_gradients",
];
const FP16_KEYS = [
  "enabled",
  "loss_scale",
  "initial_scale_power",
  "loss_scale_window",
  "hysteresis",
  "consecutive_hysteresis",
  "min_loss_scale",
];

/**
 * Maps a DeepSpeed JSON config onto plait's transforms, so a DeepSpeed setup runs unchanged:
 * `gradient_accumulation_steps` → withAccumulation (coalesced: one reduction per window, at
 * every ZeRO stage), `fp16` → withAMP "16-mixed" with DeepSpeed's dynamic loss scaler (or a
 * static one for loss_scale > 0), `bf16` → withAMP "bf16-mixed", `zero_optimization.stage` →
 * withZeRO (0: withDDP), `gradient_clipping` → withGradClip on the global norm. The batch keys
 * are checked as DeepSpeed does (train_batch_size = micro × accumulation × world size; a missing
 * one is derived from the others) and returned for the data loader. Keys it does not map are
 * refused, so nothing in a config is silently ignored (except ZeRO's communication tuning).
 */
export function withDeepSpeed<B>(step: StepLike<B>, config: DeepSpeedConfig, worldSize = 1): DeepSpeedPlan<B> {
  const c = object(config, "config");
  unknownKeys(c, TOP_KEYS, "config");
  const batch = batchSizes(c, worldSize);
  const zeroConfig = object(c.zero_optimization ?? {}, "zero_optimization");
  unknownKeys(zeroConfig, ["stage", ...ZERO_TUNING], "zero_optimization");
  const stage = zeroConfig.stage ?? 0;
  if (![0, 1, 2, 3].includes(stage as number)) {
    throw new RangeError(`plait: ${OP}: zero_optimization.stage must be 0, 1, 2 or 3, got ${JSON.stringify(stage)}`);
  }
  const clip = c.gradient_clipping ?? 1.0;
  if (!(typeof clip === "number" && clip >= 0 && Number.isFinite(clip))) {
    throw new RangeError(`plait: ${OP}: gradient_clipping must be a finite number ≥ 0, got ${JSON.stringify(clip)}`);
  }

  let s: StepLike<B> = batch.gas > 1 ? withAccumulation(step, batch.gas) : step;
  const precision = precisionOf(c);
  if (precision) s = withAMP(s, precision);
  s = stage === 0 ? withDDP(s) : withZeRO(s, { stage: stage as ZeROStage });
  // outside the strategy: the global norm of the reduced gradient
  const composed = clip > 0 ? withGradClip(s, { maxNorm: clip }) : (s as Step<B>);
  return {
    step: composed,
    microBatchSize: batch.micro,
    gradientAccumulationSteps: batch.gas,
    trainBatchSize: batch.train,
  };
}

function precisionOf(c: DeepSpeedConfig): Parameters<typeof withAMP>[1] | undefined {
  const fp16 = object(c.fp16 ?? {}, "fp16");
  const bf16 = object(c.bf16 ?? {}, "bf16");
  unknownKeys(fp16, FP16_KEYS, "fp16");
  unknownKeys(bf16, ["enabled"], "bf16");
  if (fp16.enabled === true && bf16.enabled === true) {
    throw new TypeError(`plait: ${OP}: fp16.enabled and bf16.enabled are both true; enable one`);
  }
  if (bf16.enabled === true) return { precision: "bf16-mixed" };
  if (fp16.enabled !== true) return undefined;
  const fixed = fp16.loss_scale ?? 0;
  let scaler: LossScaler;
  try {
    scaler =
      fixed > 0
        ? staticScaler(fixed)
        : deepspeedScaler({
            initialScalePower: fp16.initial_scale_power,
            lossScaleWindow: fp16.loss_scale_window,
            hysteresis: fp16.hysteresis,
            minLossScale: fp16.min_loss_scale,
            consecutiveHysteresis: fp16.consecutive_hysteresis,
          });
  } catch (e) {
    throw new RangeError(`plait: ${OP}: fp16: ${(e as Error).message.replace(/^plait: /, "")}`);
  }
  return { precision: "16-mixed", scaler };
}

/** DeepSpeed's batch rule: train_batch_size = micro × gas × world; any two give the third. */
function batchSizes(c: DeepSpeedConfig, worldSize: number): { micro?: number; gas: number; train?: number } {
  if (!(Number.isInteger(worldSize) && worldSize >= 1)) {
    throw new RangeError(`plait: ${OP}: argument worldSize must be a positive integer, got ${String(worldSize)}`);
  }
  const pos = (key: "train_batch_size" | "train_micro_batch_size_per_gpu" | "gradient_accumulation_steps") => {
    const v = c[key];
    if (v !== undefined && !(Number.isInteger(v) && v > 0)) {
      throw new RangeError(`plait: ${OP}: ${key} must be a positive integer, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const train = pos("train_batch_size");
  let micro = pos("train_micro_batch_size_per_gpu");
  let gas = pos("gradient_accumulation_steps");
  if (train !== undefined && micro !== undefined && gas === undefined) gas = train / (micro * worldSize);
  if (train !== undefined && micro === undefined) micro = train / ((gas ?? 1) * worldSize);
  gas ??= 1;
  const derived = micro === undefined ? undefined : micro * gas * worldSize;
  if (train !== undefined && (derived !== train || !Number.isInteger(micro) || !Number.isInteger(gas))) {
    throw new RangeError(
      `plait: ${OP}: train_batch_size ${train} is not train_micro_batch_size_per_gpu × gradient_accumulation_steps × world size (${c.train_micro_batch_size_per_gpu ?? "?"} × ${c.gradient_accumulation_steps ?? "?"} × ${worldSize})`,
    );
  }
  return { micro, gas, train: derived };
}

function object<T>(v: T, what: string): T & Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new TypeError(`plait: ${OP}: ${what} must be an object, got ${JSON.stringify(v)}`);
  }
  return v as T & Record<string, unknown>;
}

function unknownKeys(o: Record<string, unknown>, known: string[], what: string): void {
  const extra = Object.keys(o).filter((k) => !known.includes(k));
  if (extra.length > 0) {
    throw new TypeError(
      `plait: ${OP}: ${what} has keys plait does not map: ${extra.join(", ")} (it maps ${known.join(", ")})`,
    );
  }
}
