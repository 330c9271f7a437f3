// @ts-check
// A kernel-pool thread: instantiates the kernel modules over the shared memory, then runs the
// jobs the main thread posts into its slot until told to stop. Plain JavaScript so that it
// starts the same way on Node, Deno and Bun.
import { parentPort, workerData } from "node:worker_threads";
import { instantiateKernels, threadTable } from "./instance.js";
import { SLOT, SPIN_ITERATIONS } from "./pool-protocol.js";

const { memory, modules, layout, slotByte, names, parent } = workerData;
const kernels = instantiateKernels(memory, modules, layout, parent);
const i32 = new Int32Array(memory.buffer, slotByte, SLOT.bytes / 4);
const f64 = new Float64Array(memory.buffer, slotByte, SLOT.bytes / 8);
/** @type {Function[]} */
const fns = names.map((/** @type {string} */ n) => {
  const [mod, fn] = n.split(".");
  return /** @type {any} */ (kernels)[mod][fn];
});

// If the thread that owns this pool dies without closing it (terminated; Deno then keeps this
// worker alive), its memory, this job slot included, is given back and reused. Its releaser bumps
// this thread's slot generation first, so a wake-up that finds it changed ends the loop at once.
const threads = threadTable(memory, layout);
const generation = Atomics.load(threads, 2 * kernels.stackSlot + 1);
const released = () => Atomics.load(threads, 2 * kernels.stackSlot + 1) !== generation;
/** How often an idle pool thread checks whether it was given up on. */
const RELEASE_CHECK_MS = 1000;

i32[SLOT.stackSlot] = kernels.stackSlot;
Atomics.store(i32, SLOT.ready, 1);
Atomics.notify(i32, SLOT.ready);
let last = 0;
for (;;) {
  let seq = Atomics.load(i32, SLOT.seq);
  for (let spins = 0; seq === last && !released(); seq = Atomics.load(i32, SLOT.seq)) {
    if (++spins > SPIN_ITERATIONS) {
      Atomics.wait(i32, SLOT.seq, last, RELEASE_CHECK_MS);
      spins = 0;
    }
  }
  if (seq < 0 || released()) break;
  last = seq;
  try {
    const n = i32[SLOT.nargs];
    const args = [];
    for (let a = 0; a < n; a++) args.push(f64[SLOT.args + a]);
    fns[i32[SLOT.fn]](...args);
    i32[SLOT.status] = 0;
  } catch (e) {
    i32[SLOT.status] = 1;
    parentPort?.postMessage({ error: String(e) });
  }
  Atomics.store(i32, SLOT.done, seq);
  Atomics.notify(i32, SLOT.done);
}
