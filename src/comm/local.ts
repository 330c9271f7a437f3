import { runtime } from "../core/runtime.ts";
import { checkTensor, Tensor } from "../core/tensor.ts";
import type { Tree } from "../core/tree.ts";
import { CommError, describeError } from "./errors.ts";
import type { CollectiveOptions, Comm, ReduceOp } from "./types.ts";
import { checkOp, checkReducible, checkRoot, checkTimeout, leavesOf } from "./validate.ts";

/** The communicator of a world of one rank: every collective is the identity (or a copy). */
export function localComm(): Comm {
  return new LocalComm();
}

/** Rejects when the signal has already fired; a world of one never waits, so nothing else can. */
export function checkNotAborted(name: string, opts: CollectiveOptions | undefined): void {
  const signal = opts?.signal;
  if (signal?.aborted) {
    throw new CommError(`plait: ${name}: aborted: ${describeError(signal.reason)}`, "aborted", -1, {
      cause: signal.reason,
    });
  }
}

class LocalComm implements Comm {
  readonly rank = 0;
  readonly worldSize = 1;

  async allReduce<T extends Tree>(x: T, op: ReduceOp, opts?: CollectiveOptions): Promise<T> {
    const o = checkOp("allReduce", op);
    const leaves = leavesOf("allReduce", x);
    for (const [i, leaf] of leaves.entries()) {
      checkReducible("allReduce", leaf, o, leaves.length > 1 || !(x instanceof Tensor) ? `x leaf ${i}` : "x");
    }
    this.start("allReduce", opts);
    return x;
  }

  async broadcast<T extends Tree>(x: T, root: number, opts?: CollectiveOptions): Promise<T> {
    leavesOf("broadcast", x);
    checkRoot("broadcast", root, 1);
    this.start("broadcast", opts);
    return x;
  }

  async allGather(x: Tensor, opts?: CollectiveOptions): Promise<Tensor> {
    checkTensor("allGather", "x", x);
    this.start("allGather", opts);
    return copyOf(x);
  }

  async reduceScatter(x: Tensor, op: ReduceOp, opts?: CollectiveOptions): Promise<Tensor> {
    checkReducible("reduceScatter", checkTensor("reduceScatter", "x", x), checkOp("reduceScatter", op));
    this.start("reduceScatter", opts);
    return copyOf(x);
  }

  async barrier(opts?: CollectiveOptions): Promise<void> {
    this.start("barrier", opts);
  }

  private start(name: string, opts: CollectiveOptions | undefined): void {
    checkTimeout(name, opts, 1);
    checkNotAborted(name, opts);
  }
}

function copyOf(x: Tensor): Tensor {
  const out = new Tensor([x.size], x.dtype);
  runtime().k.as.copy_bytes(out.ptr, x.ptr, x.byteLength);
  return out;
}
