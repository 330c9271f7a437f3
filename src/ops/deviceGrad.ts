// valueAndGrad for params on a CUDA device: the loss function's device ops record on a
// DeviceTape, the reverse pass runs on the device, and the gradients come back as CudaTensors
// on that device (f32; a half leaf's too). The loss value is the one host read of the step.
import { deviceKernels } from "../../ffi/cuda/dispatch.ts";
import { CudaTensor, deviceOf } from "../core/device.ts";
import { scope } from "../core/scope.ts";
import { Tensor } from "../core/tensor.ts";
import { type Tree, treeFlatten, treeUnflatten } from "../core/tree.ts";
import { DeviceTape, withDeviceTape } from "./deviceTape.ts";
import type { GradContext, LossAndGrads } from "./valueAndGrad.ts";

const FLOATS = ["f32", "f16", "bf16"];

/** valueAndGrad's step on device params (valueAndGrad.ts checks lossScale and calls this). */
export function deviceValueAndGrad<B>(
  lossFn: (params: Tree, batch: B) => unknown,
  params: Tree,
  batch: B,
  ctx: GradContext,
  lossScale: number,
): LossAndGrads {
  const { leaves: raw, def } = treeFlatten(params);
  const leaves = raw as unknown as CudaTensor[];
  const first = leaves[0];
  const seen = new Set<CudaTensor>();
  for (const [i, p] of leaves.entries()) {
    if (!(p instanceof CudaTensor) || p.device !== first.device) {
      const where = p instanceof CudaTensor ? p.device : deviceOf(p as unknown as Tensor);
      throw new TypeError(
        `plait: valueAndGrad: params leaf ${i} is on ${where}, but params leaf 0 is on ${first.device}: every param must be on one device (move them with .to("${first.device}"))`,
      );
    }
    if (!FLOATS.includes(p.dtype))
      throw new TypeError(
        `plait: valueAndGrad: params leaf ${i} (${p.describe()}) has dtype ${p.dtype}; on a device params are f32, f16 or bf16`,
      );
    if (ctx.computeDType !== undefined && p.dtype !== ctx.computeDType && p.dtype !== "f32")
      throw new TypeError(
        `plait: valueAndGrad: params leaf ${i} (${p.describe()}) has dtype ${p.dtype}, expected ${ctx.computeDType} (ctx.computeDType) or f32`,
      );
    if (seen.has(p)) throw new TypeError(`plait: valueAndGrad: params leaf ${i} is the same tensor as an earlier leaf`);
    seen.add(p);
  }
  return scope(() => {
    const tape = new DeviceTape(first.device);
    for (const p of leaves) tape.watch(p);
    const loss = withDeviceTape(tape, () => lossFn(params, batch));
    if (!(loss instanceof CudaTensor) || loss.size !== 1 || loss.dtype !== "f32") {
      const got = loss instanceof CudaTensor || loss instanceof Tensor ? loss.describe() : typeof loss;
      throw new TypeError(
        `plait: valueAndGrad: with params on ${first.device}, lossFn must return a scalar f32 tensor on ${first.device}, got ${got}${loss instanceof Tensor ? " (a cpu tensor: an op in lossFn ran on cpu)" : ""}`,
      );
    }
    if (loss.device !== first.device)
      throw new TypeError(
        `plait: valueAndGrad: lossFn returned a tensor on ${loss.device}, but the params are on ${first.device}`,
      );
    const host = loss.to("cpu");
    const value = Number(host.data()[0]);
    host.dispose();
    const seedHost = new Tensor(loss.shape, "f32");
    seedHost.data()[0] = lossScale;
    const seed = seedHost.to(first.device);
    seedHost.dispose();
    tape.backward(loss, seed);
    const k = deviceKernels();
    const grads = leaves.map((p) => {
      const g = tape.gradOf(p);
      if (g) return g;
      const z = new CudaTensor(p.shape, "f32", p.deviceIndex);
      k.zero(z);
      return z;
    });
    return { loss: value, grads: treeUnflatten(def, grads as unknown as Tensor[]), gradScale: lossScale };
  });
}
