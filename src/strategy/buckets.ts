import type { Comm, ReduceOp } from "../comm/types.ts";
import { anyCuda } from "../core/device.ts";
import type { DType } from "../core/dtype.ts";
import { runtime } from "../core/runtime.ts";
import { Tensor } from "../core/tensor.ts";
import { deviceAllReduceBuckets } from "./device.ts";

/** Bucket size limits in bytes: the first bucket of each dtype, and every later one. */
export interface BucketLimits {
  readonly firstBytes: number;
  readonly capBytes: number;
}

/** The options of withDDP's buckets, checked: sizes in MiB, as torch's bucket_cap_mb. */
export function bucketLimits(op: string, opts: { bucketMB?: number; firstBucketMB?: number }): BucketLimits {
  const mb = (name: "bucketMB" | "firstBucketMB", def: number) => {
    const v = opts[name] ?? def;
    if (!(typeof v === "number" && v > 0 && Number.isFinite(v))) {
      throw new RangeError(`plait: ${op}: option ${name} must be a finite number of MiB > 0, got ${String(v)}`);
    }
    return v * 2 ** 20;
  };
  return { firstBytes: mb("firstBucketMB", 1), capBytes: mb("bucketMB", 25) };
}

/**
 * Groups leaves into buckets as torch's DDP does (compute_bucket_assignment_by_size): in reverse
 * leaf order (the order backward produces gradients), one dtype per bucket, a bucket closing as
 * soon as it holds at least its limit; the first bucket of each dtype has the small limit.
 * Returns leaf indices per bucket, in the order the buckets are reduced.
 */
export function planBuckets(leaves: readonly Tensor[], limits: BucketLimits): number[][] {
  const open = new Map<DType, { idx: number[]; bytes: number }>();
  const closedOf = new Map<DType, number>();
  const buckets: number[][] = [];
  for (let i = leaves.length - 1; i >= 0; i--) {
    const { dtype, byteLength } = leaves[i];
    const b = open.get(dtype) ?? { idx: [], bytes: 0 };
    b.idx.push(i);
    b.bytes += byteLength;
    const limit = (closedOf.get(dtype) ?? 0) === 0 ? limits.firstBytes : limits.capBytes;
    if (b.bytes >= limit) {
      buckets.push(b.idx);
      open.delete(dtype);
      closedOf.set(dtype, (closedOf.get(dtype) ?? 0) + 1);
    } else open.set(dtype, b);
  }
  for (const b of open.values()) buckets.push(b.idx);
  return buckets;
}

/**
 * planBuckets for a step's gradients, planned again only when the leaves' dtypes or sizes
 * change: a strategy calls it every step with leaves of one layout, and re-planning made ~1 KB
 * of garbage per step (maps, index arrays).
 */
export function bucketPlanner(limits: BucketLimits): (leaves: readonly Tensor[]) => number[][] {
  let dtypes: DType[] = [];
  let bytes: number[] = [];
  let plan: number[][] = [];
  return (leaves) => {
    let same = leaves.length === dtypes.length;
    for (let i = 0; same && i < leaves.length; i++) {
      same = leaves[i].dtype === dtypes[i] && leaves[i].byteLength === bytes[i];
    }
    if (!same) {
      plan = planBuckets(leaves, limits);
      dtypes = leaves.map((t) => t.dtype);
      bytes = leaves.map((t) => t.byteLength);
    }
    return plan;
  };
}

/**
 * Leaves of at least this many bytes are reduced in place, each in its own collective: copying
 * one into a bucket and back costs more memory traffic than a collective's fixed latency.
 */
export const IN_PLACE_BYTES = 64 * 1024;

/**
 * All-reduces `leaves` in place, bucket by bucket. On a comm that fuses a tree's leaves into one
 * collective (Comm.fusesLeaves), each bucket is one call on its leaves as they are. Otherwise a
 * bucket's small leaves are copied into one
 * flat tensor, reduced in one collective, and copied back; its large ones (≥ IN_PLACE_BYTES) are
 * reduced where they are. Elementwise the arithmetic is the same as reducing each leaf, so
 * bucketing never changes a bit; it only sets how many collectives a step makes.
 */
export async function allReduceBuckets(
  comm: Comm,
  leaves: readonly Tensor[],
  buckets: readonly number[][],
  op: ReduceOp,
): Promise<void> {
  if (anyCuda(leaves)) return deviceAllReduceBuckets(comm, leaves, buckets, op, IN_PLACE_BYTES); // strategy/device.ts
  if (comm.fusesLeaves) {
    // one collective per bucket, every leaf where it is (a bucket holds one dtype)
    for (const bucket of buckets) {
      if (bucket.length === 1) await comm.allReduce(leaves[bucket[0]], op);
      else if (bucket.length > 1)
        await comm.allReduce(
          bucket.map((i) => leaves[i]),
          op,
        );
    }
    return;
  }
  const copy = runtime().k.as.copy_bytes as (dst: number, src: number, bytes: number) => void;
  for (const bucket of buckets) {
    // large leaves first, each where it is; then the small ones (fewer than 2: as they are)
    let small = 0;
    let size = 0;
    let only = -1;
    for (const i of bucket) {
      const t = leaves[i];
      if (t.byteLength >= IN_PLACE_BYTES) await comm.allReduce(t, op);
      else {
        small++;
        size += t.size;
        only = i;
      }
    }
    if (small === 1) await comm.allReduce(leaves[only], op);
    if (small < 2) continue;
    const flat = new Tensor([size], leaves[only].dtype);
    try {
      let at = flat.ptr;
      for (const i of bucket) {
        const t = leaves[i];
        if (t.byteLength >= IN_PLACE_BYTES) continue;
        copy(at, t.ptr, t.byteLength);
        at += t.byteLength;
      }
      await comm.allReduce(flat, op);
      at = flat.ptr;
      for (const i of bucket) {
        const t = leaves[i];
        if (t.byteLength >= IN_PLACE_BYTES) continue;
        copy(t.ptr, at, t.byteLength);
        at += t.byteLength;
      }
    } finally {
      flat.dispose();
    }
  }
}
