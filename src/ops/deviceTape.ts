// The tape of a valueAndGrad call whose params live on a CUDA device: tape.ts's reverse pass
// (slots, nodes, the saved tensors freed after their last reader, one gradient buffer per input
// that every consumer adds into) over CudaTensors, with the device kernels of ffi/cuda doing the
// accumulation. Gradients are f32 (a half compute copy's gradient too, as on the CPU). Device
// ops (ops/cuda.ts) record here; an op with no device backward refuses a recorded input.
import { deviceKernels } from "../../ffi/cuda/dispatch.ts";
import { type CudaDevice, CudaTensor, setDeviceTapeProbe } from "../core/device.ts";

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

interface Node {
  out: number;
  backward: DeviceBackward;
  saves: readonly CudaTensor[];
  frees?: CudaTensor[];
}

export class DeviceTape implements DeviceGradSink {
  private readonly slots = new Map<CudaTensor, number>();
  private readonly tensors: CudaTensor[] = [];
  private readonly nodes: Node[] = [];
  private readonly born = new Set<CudaTensor>();
  private grads: (CudaTensor | undefined)[] = [];
  private pending: CudaTensor | undefined;
  private moved: CudaTensor | undefined;

  constructor(readonly device: CudaDevice) {}

  watch(param: CudaTensor): void {
    if (this.slots.has(param)) return;
    this.slots.set(param, this.tensors.length);
    this.tensors.push(param);
  }

  tracks(t: unknown): boolean {
    return t instanceof CudaTensor && this.slots.has(t);
  }

  /** As Tape.record: `out` came from an op whose reverse step is `backward`; `scratch` is freed after it. */
  record(
    out: CudaTensor,
    backward: DeviceBackward,
    saves: readonly CudaTensor[],
    scratch: readonly CudaTensor[] = [],
  ): void {
    this.slots.set(out, this.tensors.length);
    this.tensors.push(out);
    this.born.add(out);
    for (const t of scratch) this.born.add(t);
    this.nodes.push({ out: this.tensors.length - 1, backward, saves });
  }

  /** The reverse pass from `root` seeded with `seed` (tape.ts's order and freeing rules). */
  backward(root: CudaTensor, seed: CudaTensor): void {
    const rootSlot = this.slots.get(root);
    if (rootSlot === undefined) {
      seed.dispose();
      return;
    }
    this.grads = new Array(this.tensors.length);
    this.grads[rootSlot] = seed;
    const seen = new Set<CudaTensor>();
    for (const node of this.nodes) {
      for (const t of node.saves) {
        if (!seen.has(t) && this.born.has(t)) {
          seen.add(t);
          if (node.frees) node.frees.push(t);
          else node.frees = [t];
        }
      }
    }
    for (const t of this.born) if (!seen.has(t)) t.dispose();
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const node = this.nodes[i];
      const g = this.grads[node.out];
      this.grads[node.out] = undefined;
      if (g !== undefined) {
        this.pending = g;
        node.backward(g, this);
        if (this.pending !== undefined) g.dispose();
        this.pending = undefined;
        this.moved = undefined;
      }
      if (node.frees) for (const t of node.frees) t.dispose();
    }
  }

  gradOf(param: CudaTensor): CudaTensor | undefined {
    const slot = this.slots.get(param);
    return slot === undefined ? undefined : this.grads[slot];
  }

  buffer(x: CudaTensor): { out: CudaTensor; accumulate: boolean } | null {
    const slot = this.slots.get(x);
    if (slot === undefined) return null;
    const have = this.grads[slot];
    if (have !== undefined) return { out: have, accumulate: true };
    const out = new CudaTensor(x.shape, "f32", x.deviceIndex);
    this.grads[slot] = out;
    return { out, accumulate: false };
  }

  give(x: CudaTensor, g: CudaTensor): void {
    const owned = g !== this.pending && g !== this.moved;
    const slot = this.slots.get(x);
    if (slot === undefined) {
      if (owned) g.dispose();
      return;
    }
    const have = this.grads[slot];
    if (have !== undefined) {
      deviceKernels().axpy(1, g, have);
      if (owned) g.dispose();
    } else if (g === this.pending) {
      this.pending = undefined;
      this.moved = g;
      this.grads[slot] = g;
    } else if (g === this.moved) {
      const copy = new CudaTensor(g.shape, g.dtype, g.deviceIndex);
      deviceKernels().scale(g, 1, copy);
      this.grads[slot] = copy;
    } else this.grads[slot] = g;
  }

  addScaled(x: CudaTensor, s: number, v: CudaTensor): void {
    const dx = this.buffer(x);
    if (!dx) return;
    if (dx.accumulate) deviceKernels().axpy(s, v, dx.out);
    else deviceKernels().scale(v, s, dx.out);
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
