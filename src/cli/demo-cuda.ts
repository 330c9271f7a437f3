// `plait demo --device cuda:N`: the MNIST MLP trained on one CUDA device. The params, their
// gradients, the optimizer's momentum and the precision transform's copies live on the device;
// each batch is gathered on the host and uploaded; the evaluation copies the logits back. The
// CUDA runtime is asked first (cudaGetDeviceCount), so a machine without a usable device fails
// at once with the error `plait env` reports, before any data is loaded.
import { deviceCount } from "../../ffi/cuda/runtime.ts";
import { type CudaDevice, type CudaTensor, parseDevice } from "../core/device.ts";
import type { Tensor } from "../core/tensor.ts";
import { type Tree, treeLeaves, treeMap } from "../core/tree.ts";
import { Batcher } from "../data/batcher.ts";
import type { LabelledData } from "../data/gather.ts";
import { loadMnist } from "../data/mnist.ts";
import { Rng } from "../data/rng.ts";
import { progressMode } from "../fit/progress.ts";
import { trainEpochs } from "../fit/trainEpochs.ts";
import { mlp } from "../nn/mlp.ts";
import { relu } from "../ops/activation.ts";
import { matmul } from "../ops/linear.ts";
import { softmaxCrossEntropy } from "../ops/loss.ts";
import { valueAndGrad } from "../ops/valueAndGrad.ts";
import { sgd } from "../optim/sgd.ts";
import type { Precision } from "../precision/policy.ts";
import { withPrecision } from "../precision/precision.ts";
import { train } from "../step/train.ts";
import type { Flags } from "./args.ts";
import { accuracy, type DEMO_FLAGS, labelledBatches, totals, writeReport } from "./demo-common.ts";

type Layers = { layers: { w: CudaTensor; b: CudaTensor }[] };

/** The MLP's logits on the device (mlp.apply's math: linear, relu, linear; the matmuls carry the bias). */
function logitsOn(params: Tree, x: CudaTensor): CudaTensor {
  const { layers } = params as unknown as Layers;
  let h = x;
  layers.forEach(({ w, b }, i) => {
    h = matmul(h, w, { bias: b });
    if (i < layers.length - 1) h = relu(h);
  });
  return h;
}

const DEVICE_PRECISIONS: readonly Precision[] = ["32-true", "16-mixed", "bf16-mixed"];

/** Which CUDA device index `--device` names, checked against the devices CUDA reports (fails fast without one). */
export function checkDemoDevice(raw: string): number {
  const d = parseDevice(raw, "flag --device");
  if (d.kind !== "cuda") throw new Error(`flag --device: expected cuda:N here, got ${raw}`);
  let count: number;
  try {
    count = deviceCount();
  } catch (e) {
    throw new Error(`--device ${raw}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (d.index >= count)
    throw new Error(`--device ${raw}: CUDA reports ${count} device(s) (cuda:0 … cuda:${count - 1})`);
  return d.index;
}

/**
 * The demo on `cuda:N`. `limit` (tests) trains and evaluates on the first samples only; the
 * device was checked by checkDemoDevice unless `skipCheck` (tests with a stand-in device).
 */
export async function demoCuda(
  flags: Flags<typeof DEMO_FLAGS>,
  limit: { train?: number; test?: number; skipCheck?: boolean } = {},
): Promise<void> {
  const device = flags.device as CudaDevice;
  if (!limit.skipCheck) checkDemoDevice(device);
  if (flags.model !== "mlp")
    throw new Error(`--device ${device} trains --model mlp (the ops it needs have device kernels); got ${flags.model}`);
  if (flags.devices !== "1" || flags.strategy !== undefined)
    throw new Error(`--device ${device} runs one rank; --devices/--strategy are the CPU ranks' flags`);
  const precision = flags.precision as Precision;
  if (!DEVICE_PRECISIONS.includes(precision))
    throw new Error(`--device ${device}: --precision must be one of ${DEVICE_PRECISIONS.join(", ")}; got ${precision}`);
  const batchSize = flags["batch-size"]!;
  const all = loadMnist({ seed: flags.seed });
  const cut = (s: LabelledData, n?: number): LabelledData =>
    n === undefined || n >= s.n ? s : { images: s.images.subarray(0, n * 784), labels: s.labels.subarray(0, n), n };
  const data = { train: cut(all.train, limit.train), test: cut(all.test, limit.test) };
  const model = mlp([784, flags.hidden!, 10]);
  const loss = (p: Tree, b: { x: CudaTensor; y: CudaTensor }) => softmaxCrossEntropy(logitsOn(p, b.x), b.y);
  const trainer = train(
    withPrecision(valueAndGrad(loss), precision),
    sgd({ lr: flags.lr!, momentum: flags.momentum! }),
  );
  const host = model.init(new Rng(flags.seed)) as unknown as Tree;
  const params = treeMap((t) => t.to(device) as unknown as Tensor, host);
  for (const t of treeLeaves(host)) t.dispose();
  const batcher = new Batcher(data.train.n, { batchSize, seed: flags.seed });
  const log = (s: string) => flags.json || process.stderr.write(s);
  log(
    `plait demo: MLP 784-${flags.hidden}-10 on ${data.train.n} MNIST digits on ${device}, batch ${batchSize}, ${flags.epochs} epochs, ${precision}\n`,
  );
  const { history, state: last } = await trainEpochs<{ x: CudaTensor; y: CudaTensor }>({
    trainer,
    state: await trainer.init(params),
    epochs: flags.epochs!,
    batches: labelledBatches(batcher, data.train, (b) => ({ x: b.x.to(device), y: b.y.to(device) })),
    // forward on the device, logits read back
    evaluate: (s) => ({
      testAccuracy: accuracy({ apply: (p, x) => logitsOn(p, x.to(device)).to("cpu") }, s.params, data.test),
    }),
    progress: progressMode(process.stderr, flags.json),
  });
  for (const t of [...treeLeaves(last.params), ...treeLeaves(last.opt.slots as Tree)]) t.dispose(); // device memory
  const summary = { model: "mlp", device, precision, ...totals(history), epochs: flags.epochs, batchSize };
  writeReport(
    flags,
    summary,
    history,
    `plait demo: MLP 784-${flags.hidden}-10 on ${device}, batch ${batchSize}, SGD lr ${flags.lr} momentum ${flags.momentum}, ${precision}`,
  );
}
