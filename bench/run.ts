// `npm run bench [-- suite ...]`: runs the named suites (default: all) and writes bench/results/.
import { unsetOpenblasEnv } from "./lib/openblas.ts";

unsetOpenblasEnv(); // OpenBLAS picks its own kernel in the bench (see lib/openblas.ts)

const SUITES: Record<string, () => Promise<{ run: () => Promise<void> }>> = {
  allreduce: () => import("./allreduce.ts"),
  blas: () => import("./blas.ts"),
  casts: () => import("./casts.ts"),
  cnn: () => import("./cnn.ts"),
  gemm: () => import("./gemm.ts"),
  gpt: () => import("./gpt.ts"),
  reduce: () => import("./reduce.ts"),
  optim: () => import("./optim.ts"),
  precision: () => import("./precision.ts"),
  train: () => import("./train.ts"),
  "train-scaling": () => import("./train-scaling.ts"),
  "train-mpi": () => import("./train-mpi.ts"),
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const names = wanted.length ? wanted : Object.keys(SUITES);
for (const name of names) {
  const load = SUITES[name];
  if (!load) throw new Error(`unknown bench suite ${JSON.stringify(name)}; have ${Object.keys(SUITES).join(", ")}`);
  await (await load()).run();
}
