import * as arith from "../core/arith.ts";
import { isHalf } from "../core/castInto.ts";
import type { DType } from "../core/dtype.ts";
import { setTapeProbe } from "../core/taped.ts";
import { Tensor } from "../core/tensor.ts";
import { addInto, copyOf } from "./accumulate.ts";

/**
 * The dtype of x's gradient: x's own, except that f16/bf16 tensors (half compute copies of
 * params) get f32 gradients, which is how mixed precision's gradients come back in f32.
 */
export const gradDTypeOf = (x: Tensor): DType => (isHalf(x.dtype) ? "f32" : x.dtype);

/**
 * Where a node's backward sends the gradients of its inputs. Each input's gradient lives in
 * one buffer that every consumer adds into, so no node ever allocates a gradient it then adds.
 */
export interface GradSink {
  /**
   * x's gradient buffer for a kernel to fill in place, or null when x needs no gradient: a
   * fresh one (`accumulate` false: overwrite it) or the one earlier consumers filled
   * (`accumulate` true: add to it). For kernels with an accumulate mode (GEMM, column sums).
   */
  buffer(x: Tensor): GradBuffer | null;
  /** Like `buffer` for kernels that can only overwrite: a temporary is added when needed. */
  assign(x: Tensor, write: (out: Tensor) => void): void;
  /** Hands over `g` (a tensor the node owns, or the node's output gradient) as x's gradient contribution. */
  give(x: Tensor, g: Tensor): void;
  /** Adds s · v to x's gradient (written into a fresh buffer, axpy into an existing one). */
  addScaled(x: Tensor, s: number, v: Tensor): void;
}

export interface GradBuffer {
  out: Tensor;
  accumulate: boolean;
}

/** The reverse step of one recorded op: reads the output gradient `g`, feeds the sink. */
export type Backward = (g: Tensor, sink: GradSink) => void;

interface Node<T, S> {
  out: number;
  backward: (g: T, sink: S) => void;
  /** Tensors the backward reads; each is freed after the earliest node that saves it. */
  saves: readonly T[];
  /** Filled just before the reverse pass: the saved tensors this node is the last reader of. */
  frees?: T[];
}

/**
 * The record of one `valueAndGrad` forward pass and its reverse pass, for any tensor class T
 * (CPU tensors here, CudaTensors in deviceTape.ts): every tensor that depends on the params has
 * a slot, every op that produced one a node, and each input's gradient lives in one buffer that
 * every consumer adds into. A subclass supplies the arithmetic (fresh buffers, add, copy, axpy,
 * scale) for its tensors.
 */
export abstract class TapeCore<T extends { dispose(): void }, S> {
  protected readonly slots = new Map<T, number>();
  private readonly shapes: T[] = [];
  private readonly nodes: Node<T, S>[] = [];
  /** Tensors created by recorded ops (outputs and their saved scratch): freed after last use. */
  private readonly born = new Set<T>();
  protected grads: (T | undefined)[] = [];
  /** The output gradient of the node running backward, until some input takes it over. */
  private pending: T | undefined;
  /** That gradient once an input took it over (within the same node). */
  private moved: T | undefined;

  /** A new gradient buffer for x (its contents are overwritten). */
  protected abstract fresh(x: T): T;
  /** have += g */
  protected abstract add(have: T, g: T): void;
  /** A copy of g. */
  protected abstract copy(g: T): T;
  /** out += s · v */
  protected abstract axpy(s: number, v: T, out: T): void;
  /** out = s · v */
  protected abstract scale(v: T, s: number, out: T): void;

  /** Gives a parameter a slot; its gradient is read back with `gradOf`. */
  watch(param: T): void {
    if (this.slots.has(param)) return;
    this.slots.set(param, this.shapes.length);
    this.shapes.push(param);
  }

  tracks(t: unknown): boolean {
    return this.slots.has(t as T);
  }

  /**
   * Records that `out` was computed by an op whose reverse step is `backward` (a closure over
   * the op's inputs). `saves` lists the tensors the backward reads; `scratch` lists tensors the
   * op made only for its backward, which the tape frees after that.
   */
  record(out: T, backward: (g: T, sink: S) => void, saves: readonly T[], scratch: readonly T[] = []): void {
    const slot = this.shapes.length;
    this.slots.set(out, slot);
    this.shapes.push(out);
    this.born.add(out);
    for (const t of scratch) this.born.add(t);
    this.nodes.push({ out: slot, backward, saves });
  }

  /**
   * Runs the reverse pass from `root`, seeded with `seed` (the loss scale) in every element.
   * Tensors the tape created are freed when no backward reads them (at the start) or after
   * their last reader has run, and each node's output gradient as soon as the node is done:
   * only the params' gradients remain.
   */
  backward(root: T, seed: T): void {
    const rootSlot = this.slots.get(root);
    if (rootSlot === undefined) {
      seed.dispose();
      return;
    }
    this.grads = new Array(this.shapes.length);
    this.grads[rootSlot] = seed;
    const seen = new Set<T>();
    for (const node of this.nodes) {
      for (const t of node.saves) {
        if (!seen.has(t) && this.born.has(t)) {
          seen.add(t);
          if (node.frees) node.frees.push(t);
          else node.frees = [t];
        }
      }
    }
    // The forward pass is over: what no backward reads can go now.
    for (const t of this.born) if (!seen.has(t)) t.dispose();
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const node = this.nodes[i];
      const g = this.grads[node.out];
      this.grads[node.out] = undefined;
      if (g !== undefined) {
        this.pending = g;
        node.backward(g, this as unknown as S);
        if (this.pending !== undefined) g.dispose();
        this.pending = undefined;
        this.moved = undefined;
      }
      if (node.frees) for (const t of node.frees) t.dispose();
    }
  }

  /** The gradient accumulated for `param`, or undefined when the loss does not depend on it. */
  gradOf(param: T): T | undefined {
    const slot = this.slots.get(param);
    return slot === undefined ? undefined : this.grads[slot];
  }

  /** x's gradient buffer (GradSink.buffer): the one earlier consumers filled, or a fresh one. */
  buffer(x: T): { out: T; accumulate: boolean } | null {
    const slot = this.slots.get(x);
    if (slot === undefined) return null;
    const have = this.grads[slot];
    if (have !== undefined) return { out: have, accumulate: true };
    const out = this.fresh(x);
    this.grads[slot] = out;
    return { out, accumulate: false };
  }

  addScaled(x: T, s: number, v: T): void {
    const dx = this.buffer(x);
    if (!dx) return;
    if (dx.accumulate) this.axpy(s, v, dx.out);
    else this.scale(v, s, dx.out);
  }

  give(x: T, g: T): void {
    const owned = g !== this.pending && g !== this.moved;
    const slot = this.slots.get(x);
    if (slot === undefined) {
      if (owned) g.dispose();
      return;
    }
    const have = this.grads[slot];
    if (have !== undefined) {
      this.add(have, g);
      if (owned) g.dispose();
    } else if (g === this.pending) {
      // The output gradient moves to the first input that takes it; later takers get a copy.
      this.pending = undefined;
      this.moved = g;
      this.grads[slot] = g;
    } else this.grads[slot] = g === this.moved ? this.copy(g) : g;
  }
}

/**
 * The CPU tape. Ops look up the active tape (`tapeFor`) and record only when an input has a
 * slot; with no tape active they pay one null check.
 */
export class Tape extends TapeCore<Tensor, GradSink> implements GradSink {
  /** `computeDType` is the dtype the params arrived in (GradContext), kept for the ops to consult. */
  constructor(readonly computeDType: DType) {
    super();
  }

  protected fresh(x: Tensor): Tensor {
    return new Tensor(x.shape, gradDTypeOf(x));
  }
  protected add(have: Tensor, g: Tensor): void {
    addInto(have, g);
  }
  protected copy(g: Tensor): Tensor {
    return copyOf(g);
  }
  protected axpy(s: number, v: Tensor, out: Tensor): void {
    arith.axpy(s, v, out);
  }
  protected scale(v: Tensor, s: number, out: Tensor): void {
    arith.scale(v, s, out);
  }

  assign(x: Tensor, write: (out: Tensor) => void): void {
    const slot = this.slots.get(x);
    if (slot === undefined) return;
    const have = this.grads[slot];
    const out = this.fresh(x);
    write(out);
    if (have === undefined) this.grads[slot] = out;
    else {
      addInto(have, out);
      out.dispose();
    }
  }
}

/** The tapes of the `valueAndGrad` calls in progress, innermost last. */
const tapes: Tape[] = [];
let active: Tape | null = null;

/** The active tape if any of `inputs` depends on the params, else null (the op just computes). */
export function tapeFor(a: Tensor, b?: Tensor, c?: Tensor): Tape | null {
  if (active === null) return null;
  return active.tracks(a) || (b !== undefined && active.tracks(b)) || (c !== undefined && active.tracks(c))
    ? active
    : null;
}

/** Whether any tape in progress records `t`: what core's raw kernels ask before they run (core/taped.ts). */
const recorded = (t: Tensor): boolean => tapes.some((tape) => tape.tracks(t));

/**
 * Runs `fn` with `tape` recording; nested calls record on the innermost tape only. While any
 * tape records, the raw `core.*` kernels refuse the tensors it tracks.
 */
export function withTape<T>(tape: Tape, fn: () => T): T {
  tapes.push(tape);
  active = tape;
  setTapeProbe(recorded);
  try {
    return fn();
  } finally {
    tapes.pop();
    active = tapes.at(-1) ?? null;
    if (active === null) setTapeProbe(null);
  }
}
