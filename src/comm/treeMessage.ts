import type { Comm } from "../comm/types.ts";
import type { DType } from "../core/dtype.ts";
import { type Shape, Tensor } from "../core/tensor.ts";

/** A value's JSON with each tensor replaced by its index, shape and dtype, and the tensors in that order. */
export function describeTree(value: unknown): { json: string; leaves: Tensor[] } {
  const leaves: Tensor[] = [];
  const json = JSON.stringify(value, (_key, v) => {
    if (!(v instanceof Tensor)) return v;
    leaves.push(v);
    return { $tensor: leaves.length - 1, shape: v.shape, dtype: v.dtype };
  });
  return { json: json ?? "null", leaves };
}

/** The value `describeTree` described, with new (uninitialised) tensors in place of the originals. */
export function rebuildTree(json: string): { value: unknown; leaves: Tensor[] } {
  const leaves: Tensor[] = [];
  const value = JSON.parse(json, (_key, v) => {
    if (v === null || typeof v !== "object" || !("$tensor" in v)) return v;
    const t = new Tensor(v.shape as Shape, v.dtype as DType);
    leaves[v.$tensor as number] = t;
    return t;
  });
  return { value, leaves };
}

/** Rank `root`'s `text` on every rank (two broadcasts: the byte length, then the bytes). */
export async function broadcastText(comm: Comm, text: string | undefined, root: number): Promise<string> {
  const mine = comm.rank === root ? new TextEncoder().encode(text ?? "") : new Uint8Array(0);
  const len = new Tensor([1], "i32");
  try {
    len.data()[0] = mine.length;
    await comm.broadcast(len, root);
    const bytes = new Tensor([len.data()[0]], "u8");
    try {
      if (comm.rank === root) bytes.data().set(mine);
      await comm.broadcast(bytes, root);
      return new TextDecoder().decode((bytes.data() as Uint8Array).slice());
    } finally {
      bytes.dispose();
    }
  } finally {
    len.dispose();
  }
}
