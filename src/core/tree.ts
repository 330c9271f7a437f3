import { Tensor } from "./tensor.ts";

/** A pytree: tensors nested in arrays and plain objects (params, grads, optimizer state). */
export type Tree = Tensor | readonly Tree[] | { readonly [key: string]: Tree };

/** The structure of a tree without its leaves; equal structures give equal `key`s. */
export interface TreeDef {
  readonly key: string;
  readonly build: (leaves: Iterator<Tensor>) => Tree;
}

export function treeFlatten(tree: Tree): { leaves: Tensor[]; def: TreeDef } {
  const leaves: Tensor[] = [];
  const def = describe(tree, leaves, "tree");
  return { leaves, def };
}

export function treeUnflatten(def: TreeDef, leaves: readonly Tensor[]): Tree {
  const it = leaves[Symbol.iterator]();
  const tree = def.build(it);
  if (!it.next().done) throw new RangeError(`plait: treeUnflatten got more leaves than the structure ${def.key} holds`);
  return tree;
}

export const treeLeaves = (tree: Tree): Tensor[] => treeFlatten(tree).leaves;

/**
 * Applies `fn` leaf by leaf over trees of one structure (checked: a mismatch names the path).
 * The result has the same structure as the first tree.
 */
export function treeMap(fn: (...leaves: Tensor[]) => Tensor, first: Tree, ...rest: Tree[]): Tree {
  const a = treeFlatten(first);
  const others = rest.map((t, i) => {
    const b = treeFlatten(t);
    if (b.def.key !== a.def.key) {
      throw new TypeError(`plait: treeMap: tree ${i + 1} has structure ${b.def.key}, tree 0 has ${a.def.key}`);
    }
    return b.leaves;
  });
  return treeUnflatten(
    a.def,
    a.leaves.map((leaf, j) => fn(leaf, ...others.map((l) => l[j]))),
  );
}

function describe(tree: Tree, leaves: Tensor[], path: string): TreeDef {
  if (tree instanceof Tensor) {
    leaves.push(tree);
    return { key: "*", build: (it) => next(it, path) };
  }
  if (Array.isArray(tree)) {
    const kids = tree.map((t, i) => describe(t, leaves, `${path}[${i}]`));
    return { key: `[${kids.map((k) => k.key).join(",")}]`, build: (it) => kids.map((k) => k.build(it)) };
  }
  if (tree !== null && typeof tree === "object" && Object.getPrototypeOf(tree) === Object.prototype) {
    const keys = Object.keys(tree).sort();
    const kids = keys.map((k) => describe((tree as Record<string, Tree>)[k], leaves, `${path}.${k}`));
    return {
      key: `{${keys.map((k, i) => `${JSON.stringify(k)}:${kids[i].key}`).join(",")}}`,
      build: (it) => Object.fromEntries(keys.map((k, i) => [k, kids[i].build(it)])),
    };
  }
  throw new TypeError(`plait: ${path} is not a tensor, array or plain object (got ${String(tree)})`);
}

function next(it: Iterator<Tensor>, path: string): Tensor {
  const r = it.next();
  if (r.done) throw new RangeError(`plait: treeUnflatten ran out of leaves at ${path}`);
  return r.value;
}
