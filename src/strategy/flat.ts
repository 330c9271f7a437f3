import { anyCuda, isCuda } from "../core/device.ts";
import { type DType, isFloat } from "../core/dtype.ts";
import { runtime } from "../core/runtime.ts";
import { type Shape, Tensor } from "../core/tensor.ts";
import { deviceFlatten, deviceShardOf, deviceUnflattenInto } from "./device.ts";

/**
 * How a group of leaves lies in one flat vector: end to end in order, padded with zeros to a
 * multiple of the world size, so every rank's shard has the same size (a collective takes equal
 * sizes on every rank). Rank r owns elements [r·shardSize, (r+1)·shardSize).
 */
export interface FlatLayout {
  readonly shapes: readonly Shape[];
  /** Elements of the leaves (without padding). */
  readonly total: number;
  readonly shardSize: number;
  readonly worldSize: number;
}

/** The layout of `leaves` over `worldSize` ranks; every leaf must be a float tensor of one dtype. */
export function flatLayout(
  op: string,
  leaves: readonly Tensor[],
  paths: readonly string[],
  worldSize: number,
): FlatLayout {
  const dtype = leaves[0]?.dtype ?? "f32";
  for (const [i, leaf] of leaves.entries()) {
    if (!isFloat(leaf.dtype) || leaf.dtype !== dtype) {
      throw new TypeError(
        `plait: ${op}: the params must be float tensors of one dtype to be flattened into shards: ${paths[i]} is ${leaf.describe()}, ${paths[0]} is ${leaves[0].describe()}`,
      );
    }
  }
  const total = leaves.reduce((n, t) => n + t.size, 0);
  return { shapes: leaves.map((t) => t.shape), total, shardSize: Math.ceil(total / worldSize), worldSize };
}

const copy = (dst: number, src: number, bytes: number) =>
  (runtime().k.as.copy_bytes as (d: number, s: number, b: number) => void)(dst, src, bytes);

/** A new tensor of layout.shardSize·worldSize elements of `dtype`: `leaves` (of that dtype) end to end, then zeros. */
export function flatten(layout: FlatLayout, leaves: readonly Tensor[], dtype: DType): Tensor {
  if (anyCuda(leaves)) return deviceFlatten(layout.shardSize * layout.worldSize, leaves, dtype); // strategy/device.ts
  const flat = new Tensor([layout.shardSize * layout.worldSize], dtype);
  let at = flat.ptr;
  for (const t of leaves) {
    copy(at, t.ptr, t.byteLength);
    at += t.byteLength;
  }
  new Uint8Array(runtime().memory.buffer, at, flat.ptr + flat.byteLength - at).fill(0);
  return flat;
}

/** Copies the flat vector (at least layout.total elements) back into `leaves`. */
export function unflattenInto(flat: Tensor, leaves: readonly Tensor[]): void {
  if (isCuda(flat)) {
    deviceUnflattenInto(flat, leaves); // strategy/device.ts
    return;
  }
  let at = flat.ptr;
  for (const t of leaves) {
    copy(t.ptr, at, t.byteLength);
    at += t.byteLength;
  }
}

/** A new tensor holding rank `rank`'s shard of the flat vector. */
export function shardOf(layout: FlatLayout, flat: Tensor, rank: number): Tensor {
  if (isCuda(flat)) return deviceShardOf(layout.shardSize, flat, rank); // strategy/device.ts
  const shard = new Tensor([layout.shardSize], flat.dtype);
  copy(shard.ptr, flat.ptr + rank * shard.byteLength, shard.byteLength);
  return shard;
}
