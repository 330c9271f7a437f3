/**
 * Loss scalers as immutable, JSON-serialisable values (jmp's design): `adjustScaler(s, finite)`
 * returns the next scaler and never mutates. Their whole state is in the value, so a checkpoint
 * that saves it resumes bit for bit.
 */
export type LossScaler = NoScaler | StaticScaler | TorchScaler | DeepSpeedScaler;

export interface NoScaler {
  readonly kind: "none";
  readonly scale: 1;
}

export interface StaticScaler {
  readonly kind: "static";
  readonly scale: number;
}

/** torch.amp.GradScaler: grows on the growthInterval-th consecutive finite step, backs off on every overflow. */
export interface TorchScaler {
  readonly kind: "torch";
  readonly scale: number;
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;
  readonly growthTracker: number;
}

/** DeepSpeed's DynamicLossScaler: window counted from the last overflow, hysteresis, a floor. */
export interface DeepSpeedScaler {
  readonly kind: "deepspeed";
  readonly scale: number;
  readonly scaleWindow: number;
  readonly minScale: number;
  readonly hysteresis: number;
  readonly consecutiveHysteresis: boolean;
  readonly curHysteresis: number;
  readonly iter: number;
  readonly lastOverflowIter: number;
}

export interface TorchScalerOptions {
  initScale?: number;
  growthFactor?: number;
  backoffFactor?: number;
  growthInterval?: number;
}

export interface DeepSpeedScalerOptions {
  initialScalePower?: number;
  lossScaleWindow?: number;
  hysteresis?: number;
  minLossScale?: number;
  consecutiveHysteresis?: boolean;
}

const f32 = Math.fround;

function check(ok: boolean, what: string, expected: string, got: unknown): void {
  if (!ok) throw new RangeError(`plait: loss scaler option ${what} must be ${expected}, got ${String(got)}`);
}

const positive = (v: number) => Number.isFinite(v) && v > 0;
const posInt = (v: number) => Number.isInteger(v) && v > 0;

export const noScaler = (): NoScaler => ({ kind: "none", scale: 1 });

export function staticScaler(scale: number): StaticScaler {
  check(positive(scale), "scale", "a finite number > 0", scale);
  return { kind: "static", scale };
}

/** Defaults are torch's: init 2^16, growth ×2, backoff ×0.5, interval 2000. */
export function torchScaler(opts: TorchScalerOptions = {}): TorchScaler {
  const { initScale = 2 ** 16, growthFactor = 2, backoffFactor = 0.5, growthInterval = 2000 } = opts;
  check(positive(initScale), "initScale", "a finite number > 0", initScale);
  check(Number.isFinite(growthFactor) && growthFactor > 1, "growthFactor", "a finite number > 1", growthFactor);
  check(backoffFactor > 0 && backoffFactor < 1, "backoffFactor", "a number in (0, 1)", backoffFactor);
  check(posInt(growthInterval), "growthInterval", "a positive integer", growthInterval);
  return { kind: "torch", scale: f32(initScale), growthFactor, backoffFactor, growthInterval, growthTracker: 0 };
}

/** Defaults are DeepSpeed's fp16 config: 2^16, window 1000, hysteresis 2, min 1. */
export function deepspeedScaler(opts: DeepSpeedScalerOptions = {}): DeepSpeedScaler {
  const {
    initialScalePower = 16,
    lossScaleWindow = 1000,
    hysteresis = 2,
    minLossScale = 1,
    consecutiveHysteresis = false,
  } = opts;
  check(Number.isInteger(initialScalePower), "initialScalePower", "an integer", initialScalePower);
  check(posInt(lossScaleWindow), "lossScaleWindow", "a positive integer", lossScaleWindow);
  check(posInt(hysteresis), "hysteresis", "a positive integer", hysteresis);
  check(positive(minLossScale), "minLossScale", "a finite number > 0", minLossScale);
  const scale = 2 ** initialScalePower;
  check(
    scale >= minLossScale,
    "initialScalePower",
    `at least log2(minLossScale) = ${Math.log2(minLossScale)}`,
    initialScalePower,
  );
  return {
    kind: "deepspeed",
    scale,
    scaleWindow: lossScaleWindow,
    minScale: minLossScale,
    hysteresis,
    consecutiveHysteresis,
    curHysteresis: hysteresis,
    iter: 0,
    lastOverflowIter: -1,
  };
}

/** The scaler after a step whose (global) gradients were `finite` or not. */
export function adjustScaler(s: LossScaler, finite: boolean): LossScaler {
  switch (s.kind) {
    case "none":
    case "static":
      return s;
    case "torch":
      return adjustTorch(s, finite);
    case "deepspeed":
      return adjustDeepSpeed(s, finite);
  }
}

// torch's update(): backoff and reset on overflow; otherwise count, and at the interval grow
// (in float32, and only if the grown scale is finite) and reset.
function adjustTorch(s: TorchScaler, finite: boolean): TorchScaler {
  if (!finite) return { ...s, scale: f32(s.scale * s.backoffFactor), growthTracker: 0 };
  const tracker = s.growthTracker + 1;
  if (tracker < s.growthInterval) return { ...s, growthTracker: tracker };
  const grown = f32(s.scale * s.growthFactor);
  return { ...s, scale: Number.isFinite(grown) ? grown : s.scale, growthTracker: 0 };
}

// DeepSpeed's update_scale(): an overflow first uses up hysteresis (the step is still skipped),
// then halves down to the floor, and raises when already at the floor; growth happens when the
// iterations since the last overflow fill a window.
function adjustDeepSpeed(s: DeepSpeedScaler, finite: boolean): DeepSpeedScaler {
  const iter = s.iter + 1;
  if (!finite) {
    if (s.hysteresis === 1 || s.curHysteresis === 1) {
      if (s.scale === s.minScale) {
        throw new Error(
          `plait: DeepSpeed loss scaler: gradients overflowed with the scale already at its minimum (${s.minScale}); cannot decrease it further`,
        );
      }
      return { ...s, scale: Math.max(s.scale / 2, s.minScale), lastOverflowIter: s.iter, iter };
    }
    return { ...s, curHysteresis: s.curHysteresis - 1, lastOverflowIter: s.iter, iter };
  }
  let { curHysteresis, scale } = s;
  if (s.consecutiveHysteresis) curHysteresis = s.hysteresis;
  if ((s.iter - s.lastOverflowIter) % s.scaleWindow === 0) {
    if (!s.consecutiveHysteresis) curHysteresis = s.hysteresis;
    scale *= 2;
  }
  return { ...s, scale, curHysteresis, iter };
}
