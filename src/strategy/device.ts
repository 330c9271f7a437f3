// The strategies on a CUDA device (ranks on cuda:N, usually over NcclComm): withDDP's gradient
// buckets are flat CudaTensors on the rank's device, packed and unpacked by device-to-device
// copies on its stream, so the gradients never leave the device. withZeRO and withFSDP flatten,
// cast and shard on the host (flat.ts, sharded.ts) and refuse device params, naming the device.
// Called from buckets.ts and sharded.ts with one-line branches.
import type { Comm, ReduceOp } from "../comm/types.ts";
import { CudaTensor, copyWithin } from "../core/device.ts";
import type { Tensor } from "../core/tensor.ts";
import { type Tree, treeLeaves } from "../core/tree.ts";

export const anyOnDevice = (leaves: readonly unknown[]): boolean => leaves.some((t) => t instanceof CudaTensor);

/** allReduceBuckets for device gradients: the same buckets and in-place rule, the flat tensor on the device. */
export async function deviceAllReduceBuckets(
  comm: Comm,
  leaves: readonly Tensor[],
  buckets: readonly number[][],
  op: ReduceOp,
  inPlaceBytes: number,
): Promise<void> {
  const all = leaves as unknown as CudaTensor[];
  for (const bucket of buckets) {
    const small = bucket.map((i) => all[i]).filter((t) => t.byteLength < inPlaceBytes);
    for (const i of bucket) if (all[i].byteLength >= inPlaceBytes) await comm.allReduce(all[i] as never, op);
    if (small.length === 1) await comm.allReduce(small[0] as never, op);
    if (small.length < 2) continue;
    const flat = new CudaTensor([small.reduce((n, t) => n + t.size, 0)], small[0].dtype, small[0].deviceIndex);
    try {
      let at = 0;
      for (const t of small) {
        copyWithin(flat, at, t, 0, t.byteLength);
        at += t.byteLength;
      }
      await comm.allReduce(flat as never, op);
      at = 0;
      for (const t of small) {
        copyWithin(t, 0, flat, at, t.byteLength);
        at += t.byteLength;
      }
    } finally {
      flat.dispose();
    }
  }
}

/** withZeRO/withFSDP's init: device params are refused (their flat shards are host tensors). */
export function refuseDeviceParams(op: string, params: Tree): void {
  const d = treeLeaves(params).find((t) => (t as unknown) instanceof CudaTensor) as unknown as CudaTensor | undefined;
  if (d) {
    throw new TypeError(
      `plait: ${op}: the params are on ${d.device}, but ${op} shards on cpu only (its flat shards are host tensors); on CUDA devices use withDDP`,
    );
  }
}
