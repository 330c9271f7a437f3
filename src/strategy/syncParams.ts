import type { Comm } from "../comm/types.ts";
import { runtime } from "../core/runtime.ts";
import { Tensor } from "../core/tensor.ts";
import { type Tree, treeLeaves } from "../core/tree.ts";
import { gatherStrings } from "./gatherStrings.ts";
import { leafPaths } from "./paths.ts";

/**
 * Checks that every rank holds params of the same structure, shapes and dtypes, then copies
 * rank 0's values into every rank's params in place (DDP's broadcast at construction). Every rank
 * sees every rank's description, so all of them throw the same error together, naming the first
 * rank and tensor that differ from rank 0's.
 */
export async function syncParams(op: string, params: Tree, comm: Comm, copiedBy?: string): Promise<void> {
  await checkSameLayout(op, params, comm);
  if (comm.worldSize === 1) return;
  if (copiedBy === undefined) await comm.broadcast(params, 0);
  else await checkSameValues(op, params, comm, copiedBy);
}

/**
 * Params that are another transform's compute copies (withAMP(withDDP(s))) cannot be broadcast:
 * the copies are recast from each rank's masters every step, which would stay different. So
 * they are compared with rank 0's instead, bit for bit, and every rank throws the same error
 * naming the first rank and tensor that differ.
 */
async function checkSameValues(op: string, params: Tree, comm: Comm, copiedBy: string): Promise<void> {
  const leaves = treeLeaves(params);
  const roots = leaves.map((leaf) => new Tensor(leaf.shape, leaf.dtype));
  let differs = "";
  try {
    for (const [i, root] of roots.entries()) bytesOf(root).set(bytesOf(leaves[i]));
    await comm.broadcast(roots, 0); // rank 0's values, all leaves in one collective
    const i = roots.findIndex((root, j) => !equalBytes(bytesOf(root), bytesOf(leaves[j])));
    if (i >= 0) differs = leafPaths(params)[i];
  } finally {
    for (const root of roots) root.dispose();
  }
  const all = await gatherStrings(comm, differs);
  const r = all.findIndex((path) => path !== "");
  if (r >= 0) {
    throw new Error(
      `plait: ${op}: rank ${r}'s ${all[r]} differs from rank 0's, and these params are ${copiedBy}'s compute copies, which ${op} cannot overwrite (they are recast from each rank's masters every step): start every rank from the same params, or put ${op} outside: ${op}(${copiedBy}(step))`,
    );
  }
}

const bytesOf = (t: Tensor) => new Uint8Array(runtime().memory.buffer, t.ptr, t.byteLength);

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Throws on every rank when some rank's params differ from rank 0's in structure, shape or dtype. */
export async function checkSameLayout(op: string, params: Tree, comm: Comm): Promise<void> {
  if (comm.worldSize === 1) return;
  const paths = leafPaths(params);
  const mine = treeLeaves(params).map((leaf, i) => [paths[i], leaf.describe()]);
  const all = (await gatherStrings(comm, JSON.stringify(mine))).map((s) => JSON.parse(s) as string[][]);
  for (let r = 1; r < all.length; r++) {
    const diff = firstDifference(all[0], all[r], r);
    if (diff) throw new Error(`plait: ${op}: the params differ across ranks: ${diff}`);
  }
}

function firstDifference(root: string[][], other: string[][], r: number): string | undefined {
  for (let i = 0; i < Math.max(root.length, other.length); i++) {
    const a = root[i];
    const b = other[i];
    if (a === undefined) return `rank ${r} has ${b[0]} (${b[1]}), which rank 0 lacks`;
    if (b === undefined) return `rank ${r} lacks ${a[0]} (${a[1]} on rank 0)`;
    if (a[0] !== b[0]) return `rank ${r} has ${b[0]} (${b[1]}) where rank 0 has ${a[0]} (${a[1]})`;
    if (a[1] !== b[1]) return `rank ${r}'s ${b[0]} is ${b[1]}, rank 0's is ${a[1]}`;
  }
  return undefined;
}
