import { checkOptions } from "../core/options.ts";
import { parseDevices } from "../launch/devices.ts";
import { PRECISIONS, type Precision } from "../precision/policy.ts";
import { withPrecision } from "../precision/precision.ts";
import type { Step, StepLike } from "../step/contract.ts";
import { toStep } from "../step/transform.ts";
import { withDDP, withDDP2 } from "../strategy/ddp.ts";
import { withDeepSpeed } from "../strategy/deepspeed.ts";
import { withDP } from "../strategy/dp.ts";
import { withFSDP } from "../strategy/fsdp.ts";
import { withHorovod } from "../strategy/horovod.ts";
import { withZeRO, type ZeROStage } from "../strategy/zero.ts";

/**
 * Lightning's strategy names (its registry, 1.6 and 2.x), and plait's own zero1–3. "auto" is
 * single_device on one device and ddp on more, as Lightning picks it on CPUs.
 */
export const LIGHTNING_STRATEGIES = [
  "auto",
  "single_device",
  "ddp",
  "ddp_spawn",
  "ddp_fork",
  "ddp_notebook",
  "dp",
  "ddp2",
  "fsdp",
  "deepspeed",
  "deepspeed_stage_1",
  "deepspeed_stage_2",
  "deepspeed_stage_3",
  "horovod",
  "zero1",
  "zero2",
  "zero3",
] as const;
export type LightningStrategy = (typeof LIGHTNING_STRATEGIES)[number];

/** Lightning's legacy precision values and what 2.x maps them to. */
const PRECISION_ALIASES: Readonly<Record<string, Precision>> = {
  "64": "64-true",
  "32": "32-true",
  "16": "16-mixed",
  bf16: "bf16-mixed",
};
export type LightningPrecision = Precision | "64" | "32" | "16" | "bf16" | 64 | 32 | 16;

export interface SetupOptions {
  /** Default "auto". */
  strategy?: LightningStrategy;
  /** Default "32-true". */
  precision?: LightningPrecision;
  /** Ranks: an integer, or "auto" (one per core); default 1. */
  devices?: number | "auto";
}

/** What a Lightning `Trainer(strategy=, precision=, devices=)` becomes in plait. */
export interface Setup {
  /** The strategy as it resolved ("auto" becomes single_device or ddp). */
  readonly strategy: Exclude<LightningStrategy, "auto">;
  readonly precision: Precision;
  /** How many ranks to spawn (spawn(module, fn, { devices })). */
  readonly devices: number;
  /** The strategy's transform around the precision's: `strategy(precision(step))`. */
  wrap<B>(step: StepLike<B>): Step<B>;
}

const OP = "setup";

/**
 * Lightning's names as a bridge: `setup({ strategy: "deepspeed_stage_2", precision: "16-mixed",
 * devices: 2 })` maps a Lightning Trainer's arguments one to one onto plait's transforms:
 * - single_device: no strategy transform; ddp, ddp_spawn, ddp_fork, ddp_notebook: withDDP (the
 *   ranks are threads, however Lightning would start processes); ddp2: withDDP2; dp: withDP;
 *   fsdp: withFSDP; horovod: withHorovod; zero1–3: withZeRO.
 * - deepspeed_stage_1/2/3 (deepspeed: stage 2, Lightning's default): withDeepSpeed with
 *   `zero_optimization.stage` and no gradient clipping (Lightning writes gradient_clip_val, 0 by
 *   default, into DeepSpeed's config); 16-mixed and bf16-mixed become the config's fp16 / bf16
 *   blocks, so 16-mixed gets DeepSpeed's dynamic loss scaler (2^16, window 1000, hysteresis 2,
 *   min 1) as Lightning's DeepSpeedPrecision does. DeepSpeed has no 64-true.
 * - precision: withPrecision, inside the strategy; the legacy 64, 32, 16 and "bf16" are
 *   64-true, 32-true, 16-mixed and bf16-mixed.
 * An unknown name is an error that lists the known ones.
 */
export function setup(options?: SetupOptions): Setup {
  const opts = checkOptions(OP, options, ["strategy", "precision", "devices"]);
  const devices = parseDevices(OP, opts.devices ?? 1);
  const precision = lightningPrecision(opts.precision ?? "32-true");
  const named = opts.strategy ?? "auto";
  if (!(LIGHTNING_STRATEGIES as readonly unknown[]).includes(named)) {
    throw new RangeError(
      `plait: ${OP}: unknown strategy ${JSON.stringify(named)}; known: ${LIGHTNING_STRATEGIES.join(", ")}`,
    );
  }
  const strategy = named === "auto" ? (devices > 1 ? "ddp" : "single_device") : named;
  if (strategy === "single_device" && devices > 1) {
    throw new RangeError(
      `plait: ${OP}: strategy "single_device" runs on one device, got devices ${devices}; use "ddp" (or "auto") for ${devices} ranks`,
    );
  }
  const stage = deepspeedStage(strategy);
  if (stage !== undefined && precision === "64-true") {
    throw new RangeError(
      `plait: ${OP}: strategy "${strategy}" does not take precision "64-true" (DeepSpeed has no fp64); use "32-true", "16-mixed", "bf16-mixed", "16-true" or "bf16-true"`,
    );
  }
  return {
    strategy,
    precision,
    devices,
    wrap<B>(step: StepLike<B>): Step<B> {
      if (stage !== undefined && (precision === "16-mixed" || precision === "bf16-mixed")) {
        const half = precision === "16-mixed" ? { fp16: { enabled: true } } : { bf16: { enabled: true } };
        return withDeepSpeed(step, { zero_optimization: { stage }, gradient_clipping: 0, ...half }, devices).step;
      }
      const inner = withPrecision(step, precision);
      if (stage !== undefined) {
        return withDeepSpeed(inner, { zero_optimization: { stage }, gradient_clipping: 0 }, devices).step;
      }
      switch (strategy) {
        case "single_device":
          return toStep(OP, inner);
        case "ddp":
        case "ddp_spawn":
        case "ddp_fork":
        case "ddp_notebook":
          return withDDP(inner);
        case "ddp2":
          return withDDP2(inner);
        case "dp":
          return withDP(inner);
        case "fsdp":
          return withFSDP(inner);
        case "horovod":
          return withHorovod(inner);
        case "zero1":
        case "zero2":
        case "zero3":
          return withZeRO(inner, { stage: Number(strategy.slice(4)) as ZeROStage });
      }
      throw new Error(`plait: ${OP}: no transform for strategy ${strategy}`);
    },
  };
}

function lightningPrecision(p: unknown): Precision {
  const key = typeof p === "number" ? String(p) : p;
  if (typeof key === "string" && key in PRECISION_ALIASES) return PRECISION_ALIASES[key];
  if ((PRECISIONS as readonly unknown[]).includes(key)) return key as Precision;
  throw new RangeError(
    `plait: ${OP}: unknown precision ${JSON.stringify(p)}; known: ${PRECISIONS.join(", ")}, and Lightning's legacy 64, 32, 16 and "bf16"`,
  );
}

function deepspeedStage(strategy: string): 1 | 2 | 3 | undefined {
  if (strategy === "deepspeed") return 2;
  const m = /^deepspeed_stage_([123])$/.exec(strategy);
  return m ? (Number(m[1]) as 1 | 2 | 3) : undefined;
}
