import { CudaTensor } from "./device.ts";
import { Tensor } from "./tensor.ts";

/** A pytree: tensors nested in arrays and plain objects (params, grads, optimizer state). */
export type Tree = Tensor | readonly Tree[] | { readonly [key: string]: Tree };

/** The structure of a tree without its leaves; equal structures give equal `key`s. */
export interface TreeDef {
  readonly key: string;
  readonly build: (leaves: Iterator<Tensor>) => Tree;
}

// A structure node: a leaf, an array of nodes, or an object's sorted keys and their nodes.
type Node = null | { readonly keys?: readonly string[]; readonly kids: readonly Node[] };

// Flattening runs several times per training step (optimizer, transforms, collectives), so the
// structure is kept as plain nodes: the key string is built only when asked for, and paths only
// for an error message (from a stack of segments).
class Def implements TreeDef {
  private cachedKey: string | undefined;

  constructor(private readonly root: Node) {}

  get key(): string {
    this.cachedKey ??= keyOf(this.root);
    return this.cachedKey;
  }

  build(leaves: Iterator<Tensor>): Tree {
    return buildNode(this.root, leaves, ["tree"]);
  }
}

export function treeFlatten(tree: Tree): { leaves: Tensor[]; def: TreeDef } {
  const leaves: Tensor[] = [];
  const def = new Def(describe(tree, leaves, ["tree"]));
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

type Segments = (string | number)[];

const pathOf = (segs: Segments) =>
  segs.map((s, i) => (i === 0 ? s : typeof s === "number" ? `[${s}]` : `.${s}`)).join("");

/** Whether `t` is an object literal (its prototype is Object.prototype): a tree node, not a class instance. */
export const isPlainObject = (t: unknown): t is Record<string, Tree> =>
  t !== null && typeof t === "object" && Object.getPrototypeOf(t) === Object.prototype;

function notATree(tree: unknown, segs: Segments): never {
  throw new TypeError(`plait: ${pathOf(segs)} is not a tensor, array or plain object (got ${String(tree)})`);
}

/** A tree's leaf: a Tensor, or a CudaTensor (params, grads and moments on a device). */
const isLeaf = (t: unknown): t is Tensor => t instanceof Tensor || t instanceof CudaTensor;

function describe(tree: Tree, leaves: Tensor[], segs: Segments): Node {
  if (isLeaf(tree)) {
    leaves.push(tree);
    return null;
  }
  if (Array.isArray(tree)) {
    const kids: Node[] = [];
    for (let i = 0; i < tree.length; i++) {
      segs.push(i);
      kids.push(describe(tree[i], leaves, segs));
      segs.pop();
    }
    return { kids };
  }
  if (isPlainObject(tree)) {
    const keys = Object.keys(tree).sort();
    const kids: Node[] = [];
    for (const k of keys) {
      segs.push(k);
      kids.push(describe(tree[k], leaves, segs));
      segs.pop();
    }
    return { keys, kids };
  }
  return notATree(tree, segs);
}

function keyOf(node: Node): string {
  if (node === null) return "*";
  if (node.keys === undefined) return `[${node.kids.map(keyOf).join(",")}]`;
  const keys = node.keys;
  return `{${node.kids.map((kid, i) => `${JSON.stringify(keys[i])}:${keyOf(kid)}`).join(",")}}`;
}

function buildNode(node: Node, it: Iterator<Tensor>, segs: Segments): Tree {
  if (node === null) {
    const r = it.next();
    if (r.done) throw new RangeError(`plait: treeUnflatten ran out of leaves at ${pathOf(segs)}`);
    return r.value;
  }
  const out = node.kids.map((kid, i) => {
    segs.push(node.keys ? node.keys[i] : i);
    const t = buildNode(kid, it, segs);
    segs.pop();
    return t;
  });
  if (node.keys === undefined) return out;
  const obj: Record<string, Tree> = {};
  for (let i = 0; i < out.length; i++) obj[node.keys[i]] = out[i];
  return obj;
}

/** A tree of new tensors with the same structure, dtypes, shapes and bits (the caller owns them). */
export function copyTree(tree: Tree): Tree {
  const { leaves, def } = treeFlatten(tree);
  return treeUnflatten(
    def,
    leaves.map((t) => {
      const d = t as unknown;
      if (d instanceof CudaTensor) return d.to(d.device) as unknown as Tensor; // a device-to-device copy
      const c = new Tensor(t.shape, t.dtype);
      c.data().set(t.data() as never);
      return c;
    }),
  );
}

/** The path of every leaf ("params.layers[0].w"), in treeFlatten's order (object keys sorted). */
export function leafPaths(tree: Tree, root = "params"): string[] {
  const out: string[] = [];
  const walk = (t: Tree, path: string) => {
    if (isLeaf(t)) out.push(path);
    else if (Array.isArray(t)) for (const [i, c] of t.entries()) walk(c, `${path}[${i}]`);
    else for (const k of Object.keys(t).sort()) walk((t as Record<string, Tree>)[k], `${path}.${k}`);
  };
  walk(tree, root);
  return out;
}

/**
 * A tree's structure as JSON-able data: the tree with each leaf replaced by its index in
 * treeFlatten's order. It travels in messages and checkpoints; `fromSkeleton` rebuilds a tree.
 */
export type Skeleton = number | readonly Skeleton[] | { readonly [key: string]: Skeleton };

export function skeletonOf(tree: Tree): Skeleton {
  let i = 0;
  const walk = (t: Tree): Skeleton => {
    if (isLeaf(t)) return i++;
    if (Array.isArray(t)) return t.map(walk);
    const o = t as Record<string, Tree>;
    return Object.fromEntries(
      Object.keys(o)
        .sort()
        .map((k) => [k, walk(o[k])]),
    );
  };
  return walk(tree);
}

/** The tree of `skeleton`'s structure with `leaves[i]` where it holds index i. */
export function fromSkeleton(skeleton: Skeleton, leaves: readonly Tensor[]): Tree {
  if (typeof skeleton === "number") return leaves[skeleton];
  if (Array.isArray(skeleton)) return skeleton.map((s) => fromSkeleton(s, leaves));
  const o = skeleton as Record<string, Skeleton>;
  return Object.fromEntries(Object.keys(o).map((k) => [k, fromSkeleton(o[k], leaves)]));
}
