// The types of instance.js (plain JavaScript, so that pool workers import it on every runtime
// without a TypeScript loader). They live here, in TypeScript, so that the public API's types
// never pass through a JavaScript module (JSR's fast check cannot read JSDoc types).

/** The control words of layout.ts that instance.js uses. */
export interface CtrlWords {
  stackBitmap: number;
}

/** The parts of the shared memory's layout (layout.ts) that instance.js reads. */
export interface StackLayout {
  STACKS_BASE: number;
  STACK_SLOT_BYTES: number;
  STACK_SLOTS: number;
  THREADS_BASE: number;
  CTRL: CtrlWords;
}

/** The compiled kernel modules: AssemblyScript and C (emscripten). */
export interface KernelModules {
  as: WebAssembly.Module;
  c: WebAssembly.Module;
}

/** One thread's instances of the kernel modules over the shared memory (exports called by name), and its stack slot. */
export interface KernelInstance {
  as: Record<string, any>;
  c: Record<string, any>;
  stackSlot: number;
}
