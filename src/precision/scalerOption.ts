import { type LossScaler, type TorchScalerOptions, torchScaler } from "./scaler.ts";

/** A precision transform's `scaler` option: torch GradScaler options, or a scaler value. */
export type ScalerOption = TorchScalerOptions | LossScaler;

const TORCH_OPTIONS = ["initScale", "growthFactor", "backoffFactor", "growthInterval"];
const KINDS = ["none", "static", "torch", "deepspeed"];

/**
 * The scaler a `scaler` option describes: a LossScaler value (torchScaler(), deepspeedScaler(),
 * staticScaler(), noScaler()) as it is, options in torch's names (camelCase) through
 * torchScaler, and nothing as torchScaler() (torch's defaults).
 */
export function resolveScaler(op: string, option: ScalerOption | undefined): LossScaler {
  if (option === undefined) return torchScaler();
  if (option === null || typeof option !== "object") {
    throw new TypeError(
      `plait: ${op}: option scaler must be torch GradScaler options or a loss scaler, got ${String(option)}`,
    );
  }
  if ("kind" in option) return checkScaler(op, option, "option scaler");
  const unknown = Object.keys(option).filter((k) => !TORCH_OPTIONS.includes(k));
  if (unknown.length > 0) {
    throw new TypeError(
      `plait: ${op}: option scaler has unknown keys ${unknown.join(", ")}; torch GradScaler options are ${TORCH_OPTIONS.join(", ")}`,
    );
  }
  try {
    return torchScaler(option);
  } catch (e) {
    throw new RangeError(`plait: ${op}: option scaler: ${(e as Error).message.replace(/^plait: /, "")}`);
  }
}

/** `s` checked to be a loss scaler with a usable scale (it may come from a checkpoint). */
export function checkScaler(op: string, s: LossScaler, what: string): LossScaler {
  if (s === null || typeof s !== "object" || !KINDS.includes(s.kind)) {
    throw new TypeError(
      `plait: ${op}: ${what} must be a loss scaler (kind ${KINDS.join(", ")}), got ${JSON.stringify(s)}`,
    );
  }
  if (!(typeof s.scale === "number" && Number.isFinite(s.scale) && s.scale > 0)) {
    throw new RangeError(`plait: ${op}: ${what}.scale must be a finite number > 0, got ${String(s.scale)}`);
  }
  return s;
}
