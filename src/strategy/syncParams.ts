import { gatherStrings } from "../comm/gatherStrings.ts";
import type { Comm } from "../comm/types.ts";
import { leafPaths, type Tree, treeLeaves } from "../core/tree.ts";

/**
 * Checks that every rank holds params of the same structure, shapes and dtypes, then copies
 * rank 0's values into every rank's params in place (DDP's broadcast at construction). Every rank
 * sees every rank's description, so all of them throw the same error together, naming the first
 * rank and tensor that differ from rank 0's.
 */
export async function syncParams(op: string, params: Tree, comm: Comm): Promise<void> {
  await checkSameLayout(op, params, comm);
  if (comm.worldSize > 1) await comm.broadcast(params, 0);
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
