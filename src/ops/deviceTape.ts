// The tape of a valueAndGrad call whose params live on a CUDA device: tape.ts's reverse pass
// (slots, nodes, the saved tensors freed after their last reader, one gradient buffer per input
// that every consumer adds into) over CudaTensors, with the device kernels of ffi/cuda doing the
// accumulation. Gradients are f32 (a half compute copy's gradient too, as on the CPU). Device
// ops (ops/cuda.ts) record here; an op with no device backward refuses a recorded input.
import { deviceKernels } from "../../ffi/cuda/dispatch.ts";
import { type CudaDevice, CudaTensor, setDeviceTapeProbe } from "../core/device.ts";
import { TapeCore } from "./tape.ts";

/** Where a device node's backward sends its inputs' gradients (tape.ts's GradSink, on a device). */
export interface DeviceGradSink {
  /** x's f32 gradient buffer: fresh (`accumulate` false: overwrite it) or filled before (add to it); null if x needs none. */
  buffer(x: CudaTensor): { out: CudaTensor; accumulate: boolean } | null;
  /** Hands over `g` (the node's output gradient or a tensor the node made) as x's contribution. */
  give(x: CudaTensor, g: CudaTensor): void;
  /** Adds s · v to x's gradient. */
  addScaled(x: CudaTensor, s: number, v: CudaTensor): void;
}

export type DeviceBackward = (g: CudaTensor, sink: DeviceGradSink) => void;

/** tape.ts's tape over CudaTensors, the device kernels doing its arithmetic. */
export class DeviceTape extends TapeCore<CudaTensor, DeviceGradSink> implements DeviceGradSink {
  constructor(readonly device: CudaDevice) {
    super();
  }

  protected fresh(x: CudaTensor): CudaTensor {
    return new CudaTensor(x.shape, "f32", x.deviceIndex);
  }
  protected add(have: CudaTensor, g: CudaTensor): void {
    deviceKernels().axpy(1, g, have);
  }
  protected copy(g: CudaTensor): CudaTensor {
    const copy = new CudaTensor(g.shape, g.dtype, g.deviceIndex);
    deviceKernels().scale(g, 1, copy);
    return copy;
  }
  protected axpy(s: number, v: CudaTensor, out: CudaTensor): void {
    deviceKernels().axpy(s, v, out);
  }
  protected scale(v: CudaTensor, s: number, out: CudaTensor): void {
    deviceKernels().scale(v, s, out);
  }
}

const tapes: DeviceTape[] = [];

/** The innermost device tape if any of `inputs` is recorded on it, else null. */
export function deviceTapeFor(...inputs: unknown[]): DeviceTape | null {
  const active = tapes.at(-1);
  if (active === undefined) return null;
  return inputs.some((x) => active.tracks(x)) ? active : null;
}

/** Whether any device tape in progress records `t`. */
export const deviceTaped = (t: unknown): boolean => tapes.some((tape) => tape.tracks(t));

/** Runs `fn` with `tape` recording (nested calls record on the innermost only). */
export function withDeviceTape<T>(tape: DeviceTape, fn: () => T): T {
  tapes.push(tape);
  setDeviceTapeProbe(deviceTaped); // the raw cuda.* kernels refuse recorded tensors meanwhile
  try {
    return fn();
  } finally {
    tapes.pop();
    if (tapes.length === 0) setDeviceTapeProbe(null);
  }
}
