import { Tensor } from "../core/tensor.ts";
import type { Tree } from "../core/tree.ts";

/** The path of every leaf ("params.layers[0].w"), in treeFlatten's order (object keys sorted). */
export function leafPaths(tree: Tree, root = "params"): string[] {
  const out: string[] = [];
  const walk = (t: Tree, path: string) => {
    if (t instanceof Tensor) out.push(path);
    else if (Array.isArray(t)) for (const [i, c] of t.entries()) walk(c, `${path}[${i}]`);
    else for (const k of Object.keys(t).sort()) walk((t as Record<string, Tree>)[k], `${path}.${k}`);
  };
  walk(tree, root);
  return out;
}
