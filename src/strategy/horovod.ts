import type { Comm } from "../comm/types.ts";
import { castInto } from "../core/castInto.ts";
import { bytesOf, type DType } from "../core/dtype.ts";
import { checkOptions } from "../core/options.ts";
import { allFinite } from "../core/reduce.ts";
import { runtime } from "../core/runtime.ts";
import { Tensor } from "../core/tensor.ts";
import { leafPaths, type Tree, treeLeaves } from "../core/tree.ts";
import { withAccumulation } from "../step/accumulate.ts";
import type { Step, StepLike } from "../step/contract.ts";
import { toStep, transform } from "../step/transform.ts";
import { enterStrategy } from "./nesting.ts";
import { syncParams } from "./syncParams.ts";

export interface HorovodOptions {
  /**
   * Tensor fusion threshold in MiB (Horovod's HOROVOD_FUSION_THRESHOLD): gradients of one dtype
   * travel packed in buffers of at most this many bytes (as sent: f16 under compression), one
   * allreduce per buffer; a larger gradient goes alone; 0 sends every gradient alone. Default 64.
   */
  fusionMB?: number;
  /**
   * Batches per update (DistributedOptimizer's backward_passes_per_step): the gradients of N
   * batches are summed locally, then averaged over the N batches and the ranks in one exchange.
   * Default 1.
   */
  backwardPassesPerStep?: number;
  /** "fp16": f32 gradients travel as f16 and come back as f32 (Compression.fp16). Default "none". */
  compression?: "none" | "fp16";
  /** Lightning's HorovodStrategy multiplied the learning rate by the world size; true is refused (see withHorovod). */
  scaleLR?: boolean;
}

const OP = "withHorovod";
const show = (v: unknown) => (typeof v === "string" ? JSON.stringify(v) : String(v));

/**
 * Horovod's DistributedOptimizer as a transform: every rank runs `step` on its own part of the
 * global batch and the gradients are replaced by their average over ranks, through ctx.comm
 * (any Comm). The init checks that every rank's params agree in structure, shapes and dtypes
 * and broadcasts rank 0's (hvd.broadcast_parameters); train then makes the optimizer state from
 * those params, so it starts equal on every rank too (broadcast_optimizer_state).
 *
 * Gradients are fused as Horovod fuses them: in reverse leaf order (the order backward makes
 * them), one dtype per buffer, a buffer sent once the next gradient would take it over
 * `fusionMB`. The average is elementwise, so the fusion and the plain result are bit for bit
 * those of withDDP.
 *
 * backwardPassesPerStep N > 1 runs the step under withAccumulation(step, N): N − 1 batches
 * return `accumulating` outputs without communication, the N-th reduces the window's mean
 * gradient (torch's Horovod sums the N gradients and leaves the division to the loss; plait's
 * accumulation averages). A loss scaler goes outside then: withAMP(withHorovod(s, ...)).
 *
 * compression "fp16" rounds f32 gradients to f16 for the exchange (f16 and bf16 ones travel as
 * they are; f64 ones are refused: rounding them to f16 through f32 would round twice). A
 * gradient of magnitude 65520 or more (f16's largest value is 65504) becomes inf on the wire.
 * When the grads still carry a loss scale (withAMP outside), that inf reaches the scaler, which
 * skips the step on every rank and backs off, as torch's GradScaler does with Horovod;
 * otherwise nothing would catch it, so the step throws, on every rank alike (they all hold the
 * same reduced values).
 *
 * `scaleLR: true` is refused: a step transform cannot change the optimizer's learning rate,
 * and scaling the gradients instead equals it only for some optimizers. Multiply the rate by
 * the world size where the optimizer is built, as Lightning's HorovodStrategy did for you.
 */
export function withHorovod<B>(step: StepLike<B>, opts?: HorovodOptions): Step<B> {
  const { capBytes, passes, fp16 } = horovodOptions(opts);
  const s = toStep(OP, step);
  return transform(passes > 1 ? withAccumulation(s, passes) : s, {
    name: OP,
    async init(params, ctx, inner) {
      const done = await inner(params);
      await syncParams(OP, done.params, ctx.comm);
      return done;
    },
    enter: (params, batch, ctx) => ({ params, batch, ctx: enterStrategy(OP, ctx) }),
    async update(out, ctx) {
      if (ctx.worldSize === 1 && !fp16) return out;
      const leaves = treeLeaves(out.grads);
      const wire = (d: DType): DType => (fp16 && d === "f32" ? "f16" : d);
      if (fp16) refuseF64(leaves, out.grads);
      const check = fp16 && (out.gradScale ?? 1) === 1;
      const finite = await allReduceFused(ctx.comm, leaves, planFusion(leaves, capBytes, wire), wire, check);
      if (!finite) {
        throw new Error(
          `plait: ${OP}: the gradients are not finite after the f16 exchange (compression "fp16"): a gradient of magnitude ≥ 65520 (f16's largest value is 65504) became inf on the wire (or it was inf/NaN already); wrap a loss scaler outside (withAMP(withHorovod(step, opts), { precision: "16-mixed" })) to skip such steps, or use compression "none"`,
        );
      }
      return out;
    },
  });
}

function horovodOptions(opts: HorovodOptions | undefined): { capBytes: number; passes: number; fp16: boolean } {
  const o = checkOptions(OP, opts, ["fusionMB", "backwardPassesPerStep", "compression", "scaleLR"]);
  const mb = o.fusionMB ?? 64;
  if (!(typeof mb === "number" && Number.isFinite(mb) && mb >= 0)) {
    throw new RangeError(
      `plait: ${OP}: option fusionMB must be a finite number of MiB ≥ 0 (0: no fusion), got ${show(mb)}`,
    );
  }
  const passes = o.backwardPassesPerStep ?? 1;
  if (!(Number.isInteger(passes) && passes >= 1)) {
    throw new RangeError(`plait: ${OP}: option backwardPassesPerStep must be a positive integer, got ${show(passes)}`);
  }
  const compression = o.compression ?? "none";
  if (compression !== "none" && compression !== "fp16") {
    throw new TypeError(`plait: ${OP}: option compression must be "none" or "fp16", got ${show(compression)}`);
  }
  if (o.scaleLR !== undefined && typeof o.scaleLR !== "boolean") {
    throw new TypeError(`plait: ${OP}: option scaleLR must be a boolean, got ${show(o.scaleLR)}`);
  }
  if (o.scaleLR) {
    throw new Error(
      `plait: ${OP}: option scaleLR: true cannot be honoured here: the learning rate belongs to the optimizer, which train runs after the step, and scaling the gradients instead would equal it only for plain SGD without weight decay. Multiply the rate by the world size where you build the optimizer, e.g. sgd({ lr: 0.1 * comm.worldSize }) or, for a schedule, (step) => schedule(step) * comm.worldSize`,
    );
  }
  return { capBytes: mb * 2 ** 20, passes, fp16: compression === "fp16" };
}

function refuseF64(leaves: readonly Tensor[], grads: Tree): void {
  const i = leaves.findIndex((g) => g.dtype === "f64");
  if (i >= 0) {
    throw new TypeError(
      `plait: ${OP}: compression "fp16" takes f32 (or f16/bf16) gradients, got ${leafPaths(grads, "grads")[i]} as ${leaves[i].describe()} (f64 → f16 would round twice); use compression "none" with f64 params`,
    );
  }
}

/**
 * Fusion buffers as leaf indices, in the order they are sent: leaves taken in reverse, one
 * dtype per buffer, each buffer closed when the next leaf of its dtype would take it over
 * `capBytes` (counted in the wire dtype `wire(dtype)`); a leaf over `capBytes` is a buffer alone.
 */
export function planFusion(leaves: readonly Tensor[], capBytes: number, wire = (d: DType) => d): number[][] {
  const open = new Map<DType, { idx: number[]; bytes: number }>();
  const buffers: number[][] = [];
  for (let i = leaves.length - 1; i >= 0; i--) {
    const { dtype, size } = leaves[i];
    const bytes = size * bytesOf(wire(dtype));
    let b = open.get(dtype);
    if (b && b.bytes + bytes > capBytes) {
      buffers.push(b.idx);
      b = undefined;
    }
    if (!b) {
      b = { idx: [], bytes: 0 };
      open.set(dtype, b);
    }
    b.idx.push(i);
    b.bytes += bytes;
  }
  for (const b of open.values()) buffers.push(b.idx);
  return buffers;
}

/**
 * Averages `leaves` over the ranks in place, one allreduce per buffer: a buffer of several leaves
 * is packed into one flat tensor and unpacked after; a leaf whose wire dtype differs is cast
 * there and back. With `checkFinite`, returns whether every cast-back value is finite.
 */
async function allReduceFused(
  comm: Comm,
  leaves: readonly Tensor[],
  buffers: readonly number[][],
  wire: (d: DType) => DType,
  checkFinite: boolean,
): Promise<boolean> {
  let finite = true;
  for (const idx of buffers) {
    const group = idx.map((i) => leaves[i]);
    const made: Tensor[] = [];
    try {
      const packed = group.length > 1 ? pack(group, made) : group[0];
      const sent = wire(packed.dtype) === packed.dtype ? packed : new Tensor(packed.shape, wire(packed.dtype));
      if (sent !== packed) {
        made.push(sent);
        castInto(packed, sent);
      }
      await comm.allReduce(sent, "avg");
      if (sent !== packed) {
        castInto(sent, packed);
        if (checkFinite) finite = allFinite(packed) && finite;
      }
      if (packed !== group[0]) copyBetween(packed, group, false);
    } finally {
      for (const t of made) t.dispose();
    }
  }
  return finite;
}

/** A new flat tensor holding `group` (leaves of one dtype) end to end; recorded in `made`. */
function pack(group: readonly Tensor[], made: Tensor[]): Tensor {
  const flat = new Tensor([group.reduce((n, t) => n + t.size, 0)], group[0].dtype);
  made.push(flat);
  copyBetween(flat, group, true);
  return flat;
}

/** Copies `group` into the flat tensor (`into` true) or the flat tensor back into `group`. */
function copyBetween(flat: Tensor, group: readonly Tensor[], into: boolean): void {
  const copy = runtime().k.as.copy_bytes as (dst: number, src: number, bytes: number) => void;
  let at = flat.ptr;
  for (const t of group) {
    if (into) copy(at, t.ptr, t.byteLength);
    else copy(t.ptr, at, t.byteLength);
    at += t.byteLength;
  }
}
