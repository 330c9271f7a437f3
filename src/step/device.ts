// withGradClip on device gradients: the sum of squares by the deterministic two-pass reduction of
// reduce.cu (the same bits every run) and the clip's scaling by scale_f32 in place. Called from
// clip.ts with one-line branches; the max norm and value clipping have no device kernel and
// refuse a device gradient in their argument check, naming the device.
import { deviceKernels } from "../../ffi/cuda/dispatch.ts";
import type { CudaTensor } from "../core/device.ts";

/** Σ g² of an f32 device gradient (waits for the device to read it). */
export const deviceSumSquares = (g: CudaTensor): number => deviceKernels().sum(g, { square: true });

/** g ← s · g on the device. */
export const deviceScaleInPlace = (g: CudaTensor, s: number): void => deviceKernels().scale(g, s, g);
