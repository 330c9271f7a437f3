import type { Comm } from "../comm/types.ts";
import { Tensor } from "../core/tensor.ts";

/** Every rank's `text`, in rank order (two allGathers: the byte lengths, then the padded bytes). */
export async function gatherStrings(comm: Comm, text: string): Promise<string[]> {
  const bytes = new TextEncoder().encode(text);
  const len = new Tensor([1], "i32");
  len.data()[0] = bytes.length;
  const lens = await disposing(len, () => comm.allGather(len));
  const lengths = Array.from(lens.data());
  lens.dispose();
  const width = Math.max(...lengths);
  const mine = new Tensor([width], "u8");
  mine.data().fill(0);
  mine.data().set(bytes);
  const all = await disposing(mine, () => comm.allGather(mine));
  try {
    const view = all.data() as Uint8Array;
    const decoder = new TextDecoder();
    return lengths.map((n, r) => decoder.decode(view.slice(r * width, r * width + n)));
  } finally {
    all.dispose();
  }
}

async function disposing<T>(t: Tensor, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } finally {
    t.dispose();
  }
}
