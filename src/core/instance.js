// @ts-check
// Instantiates plait's kernel modules over the process's shared memory, once per thread.
// Plain JavaScript on purpose: pool workers import it directly, on Node, Deno and Bun alike,
// without a TypeScript loader.

/**
 * @typedef {import("./instance-types.ts").StackLayout} StackLayout
 * @typedef {import("./instance-types.ts").KernelModules} KernelModules
 * @typedef {import("./instance-types.ts").KernelInstance} KernelInstance
 */

/**
 * Claims a free stack slot in the shared bitmap so that this thread's C instance has a stack
 * no other thread touches. The slot is also the thread's identity: `parent` (the slot of the
 * thread that started this one, −1 for none) is recorded, so that the threads a dead thread
 * started can be found and their slots and memory given back (src/core/threads.ts).
 * @param {WebAssembly.Memory} memory
 * @param {StackLayout} layout
 * @param {number} parent
 */
export function acquireStackSlot(memory, layout, parent) {
  const words = new Int32Array(memory.buffer, 0, 256);
  const threads = threadTable(memory, layout);
  for (let w = 0; w < layout.STACK_SLOTS / 32; w++) {
    const index = layout.CTRL.stackBitmap + w;
    for (;;) {
      const bits = Atomics.load(words, index);
      if (bits === -1) break;
      const free = 31 - Math.clz32(~bits & (bits + 1)); // lowest zero bit
      if (Atomics.compareExchange(words, index, bits, bits | (1 << free)) === bits) {
        Atomics.store(threads, 2 * (w * 32 + free), parent + 1);
        return w * 32 + free;
      }
    }
  }
  throw new RangeError(
    `plait: all ${layout.STACK_SLOTS} kernel stack slots are in use (one per thread); too many threads`,
  );
}

/**
 * @param {WebAssembly.Memory} memory
 * @param {StackLayout} layout
 * @param {number} slot
 */
export function releaseStackSlot(memory, layout, slot) {
  const words = new Int32Array(memory.buffer, 0, 256);
  const threads = threadTable(memory, layout);
  Atomics.add(threads, 2 * slot + 1, 1);
  Atomics.store(threads, 2 * slot, 0);
  Atomics.and(words, layout.CTRL.stackBitmap + (slot >> 5), ~(1 << (slot & 31)));
}

/**
 * Per stack slot: [1 + parent slot, release generation] (see layout.ts).
 * @param {WebAssembly.Memory} memory
 * @param {StackLayout} layout
 */
export function threadTable(memory, layout) {
  return new Int32Array(memory.buffer, layout.THREADS_BASE, 2 * layout.STACK_SLOTS);
}

/**
 * @param {WebAssembly.Memory} memory
 * @param {KernelModules} modules
 * @param {StackLayout} layout
 * @param {number} parent the stack slot of the thread that started this one, −1 for none
 * @returns {KernelInstance}
 */
export function instantiateKernels(memory, modules, layout, parent) {
  const env = {
    memory,
    abort() {
      throw new Error("plait: kernel aborted");
    },
  };
  const as = new WebAssembly.Instance(modules.as, { env }).exports;
  const c = new WebAssembly.Instance(modules.c, { env, wasi_snapshot_preview1: {} }).exports;
  const stackSlot = acquireStackSlot(memory, layout, parent);
  /** @type {any} */ (c).stackRestore(layout.STACKS_BASE + (stackSlot + 1) * layout.STACK_SLOT_BYTES);
  return { as, c, stackSlot };
}
