// The strategies on a CUDA device (ranks on cuda:N, usually over NcclComm): withDDP's gradient
// buckets are flat CudaTensors on the rank's device, packed and unpacked by device-to-device
// copies on its stream, so the gradients never leave the device; withZeRO's and withFSDP's flat
// vectors and shards live on the params' device too (flatten, shard, unflatten by device copies,
// casts by cast.cu). Called from buckets.ts, flat.ts and sharded.ts with one-line branches.

import { deviceKernels } from "../../ffi/cuda/dispatch.ts";
import type { Comm, ReduceOp } from "../comm/types.ts";
import { cast } from "../core/cast.ts";
import { CudaTensor, copyWithin } from "../core/device.ts";
import type { DType } from "../core/dtype.ts";
import { Tensor } from "../core/tensor.ts";

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

// ---- withZeRO / withFSDP on device params: flat.ts's flatten, shardOf and unflattenInto, and
// sharded.ts's new full-param tensors and casts, with the flat vectors on the params' device ----

/** flatten(): `leaves` end to end in a new device tensor of shardSize·worldSize elements, zero padded. */
export function deviceFlatten(total: number, leaves: readonly Tensor[], dtype: DType): Tensor {
  const all = leaves as unknown as CudaTensor[];
  const flat = new CudaTensor([total], dtype, all[0].deviceIndex);
  deviceKernels().zero(flat);
  let at = 0;
  for (const t of all) {
    copyWithin(flat, at, t, 0, t.byteLength);
    at += t.byteLength;
  }
  return flat as unknown as Tensor;
}

/** unflattenInto(): the flat device vector back into `leaves`. */
export function deviceUnflattenInto(flat: Tensor, leaves: readonly Tensor[]): void {
  let at = 0;
  for (const t of leaves as unknown as CudaTensor[]) {
    copyWithin(t, 0, flat as unknown as CudaTensor, at, t.byteLength);
    at += t.byteLength;
  }
}

/** shardOf(): rank `rank`'s `shardSize` elements of the flat device vector, as a new device tensor. */
export function deviceShardOf(shardSize: number, flat: Tensor, rank: number): Tensor {
  const f = flat as unknown as CudaTensor;
  const shard = new CudaTensor([shardSize], f.dtype, f.deviceIndex);
  copyWithin(shard, 0, f, rank * shard.byteLength, shard.byteLength);
  return shard as unknown as Tensor;
}

/** A new tensor of `shape` and `dtype` where `like` lives (cpu or its device). */
export function tensorLike(like: Tensor, shape: readonly number[], dtype: DType): Tensor {
  const l = like as unknown;
  return l instanceof CudaTensor
    ? (new CudaTensor([...shape], dtype, l.deviceIndex) as unknown as Tensor)
    : new Tensor([...shape], dtype);
}

/** cast() on the host, or on the device for a device tensor (f32 ↔ f16/bf16). */
export function castAnywhere(t: Tensor, dtype: DType): Tensor {
  const x = t as unknown;
  if (x instanceof CudaTensor) return deviceKernels().cast(x, dtype as "f32" | "f16" | "bf16") as unknown as Tensor;
  return cast(t, dtype);
}
