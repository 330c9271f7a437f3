/** The brand of objects a scope manages (tensors): looked up with `in`, never by reading a property. */
export const OWNED: unique symbol = Symbol("plait.owned");

/** Something that owns memory in the arena and gives it back on dispose. */
export interface Owned {
  readonly [OWNED]: true;
  dispose(): void;
  readonly disposed: boolean;
}

const stack: Set<Owned>[] = [];

/** Called by every new tensor: the innermost open scope takes ownership. */
export function track(x: Owned): void {
  stack.at(-1)?.add(x);
}

/** Removes `x` from the innermost scope that holds it (it then outlives that scope). */
export function untrack(x: Owned): void {
  for (let i = stack.length - 1; i >= 0; i--) if (stack[i].delete(x)) return;
}

/**
 * Runs `fn`; every tensor created inside and not reachable from its result is disposed when
 * it returns (or throws). The tensors in the result move to the enclosing scope, so
 * `scope(() => loss(params))` frees every intermediate without any reference counting.
 * An async `fn` works too (the scope closes when its promise settles), but tensors created by
 * other tasks while it awaits land in it as well: run such scopes one at a time.
 */
export function scope<T>(fn: () => T): T {
  const own = new Set<Owned>();
  stack.push(own);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    close(own, undefined);
    throw e;
  }
  if (result instanceof Promise) {
    return result.then(
      (value) => {
        close(own, value);
        return value;
      },
      (e) => {
        close(own, undefined);
        throw e;
      },
    ) as T;
  }
  close(own, result);
  return result;
}

/** Keeps `x` alive past every enclosing scope; the caller disposes it. */
export function keep<T extends Owned>(x: T): T {
  for (const s of stack) s.delete(x);
  return x;
}

function close(own: Set<Owned>, result: unknown): void {
  stack.splice(stack.lastIndexOf(own), 1);
  const survivors = new Set<Owned>();
  collect(result, survivors);
  const parent = stack.at(-1);
  for (const x of own) {
    if (survivors.has(x)) parent?.add(x);
    else if (!x.disposed) x.dispose();
  }
}

function collect(v: unknown, out: Set<Owned>): void {
  if (v === null || typeof v !== "object") return;
  if (isOwned(v)) out.add(v);
  else if (Array.isArray(v)) for (const x of v) collect(x, out);
  else if (Object.getPrototypeOf(v) === Object.prototype) for (const x of Object.values(v)) collect(x, out);
}

const isOwned = (v: object): v is Owned => OWNED in v;
