// @ts-check
// The layout of one pool thread's job slot (shared by pool.ts and pool-worker.js).
// Int32 indices for the control words; args are Float64 indices into the same slot.
export const SLOT = Object.freeze({
  bytes: 256,
  seq: 0, // bumped by the main thread to post a job; -1 asks the thread to exit
  done: 1, // set to seq by the worker when the job has run
  status: 2, // 0 ok, 1 the kernel threw
  fn: 3, // index into the names list given at start
  nargs: 4,
  ready: 5, // 1 once the thread has instantiated its kernels
  stackSlot: 6, // the kernel stack slot the thread holds, released by the main thread on close
  args: 8, // Float64 index: up to 24 arguments
  maxArgs: 24,
});

/** How long a waiting side polls before it sleeps in Atomics.wait (a wake-up costs ~15 µs). */
export const SPIN_ITERATIONS = 20000;
