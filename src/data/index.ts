export { Batcher, type BatcherOptions } from "./batcher.ts";
export {
  arrayDataset,
  type Collated,
  DataLoader,
  type Dataset,
  defaultCollate,
  type EpochBatches,
  type LoaderOptions,
  loader,
} from "./dataset.ts";
export { gatherBatch, gatherRows, type LabelledData, type RowData } from "./gather.ts";
export { loadMnist, MNIST_PIXELS, MNIST_SAMPLES, type MnistOptions, type MnistSplit } from "./mnist.ts";
export { encodeNames, loadNames, NAME_PACKAGES, type Names, type NamesOptions } from "./names.ts";
export { Rng, type RngState } from "./rng.ts";
