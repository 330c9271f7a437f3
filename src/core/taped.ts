// What core knows about autodiff: whether a tensor is being recorded by a tape. core never
// imports src/ops; the tape (src/ops/tape.ts) installs a probe while a valueAndGrad call is
// recording and removes it after, so outside one the check below costs one null test.
// The raw kernels of `core.*` (core/ops.ts) ask before they run: a taped tensor passed to a
// kernel that records nothing would come out of the loss as a constant, with a zero gradient
// and no error. The differentiable ops call the kernel files directly and are never refused.
import { Tensor } from "./tensor.ts";

let probe: ((t: Tensor) => boolean) | null = null;

/** Installs (or, with null, removes) the test of "is this tensor on an active tape". For src/ops/tape.ts. */
export function setTapeProbe(p: ((t: Tensor) => boolean) | null): void {
  probe = p;
}

/** Whether `t` is a tensor that an active valueAndGrad tape is recording. */
export function isTaped(t: unknown): boolean {
  return probe !== null && t instanceof Tensor && probe(t);
}

/**
 * Wraps raw kernel `fn` (public name `core.<name>`, parameters named `params`) so that it throws
 * when any tensor argument (or a tensor in an options object) is being recorded by a tape,
 * saying what to use instead (`instead`, e.g. "use exp from plait").
 */
export function refusingTaped<F extends (...args: never[]) => unknown>(
  name: string,
  params: readonly string[],
  instead: string,
  fn: F,
): F {
  const wrapped = (...args: unknown[]): unknown => {
    if (probe !== null) {
      for (let i = 0; i < args.length; i++) {
        const arg = taped(args[i], params[i] ?? `#${i}`);
        if (arg !== undefined) {
          throw new TypeError(
            `plait: core.${name}: argument ${arg} is being recorded by valueAndGrad's tape, but core.${name} is not differentiable: ${instead}`,
          );
        }
      }
    }
    return (fn as unknown as (...a: unknown[]) => unknown)(...args);
  };
  return wrapped as unknown as F;
}

/** The name of the taped tensor in `v` (the argument itself or a field of an options object), if any. */
function taped(v: unknown, name: string): string | undefined {
  if (v instanceof Tensor) return probe?.(v) ? name : undefined;
  if (v !== null && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    for (const [k, x] of Object.entries(v)) if (x instanceof Tensor && probe?.(x)) return `${name}.${k}`;
  }
  return undefined;
}
