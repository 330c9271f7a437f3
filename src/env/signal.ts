// SLURM's requeue signal. With `#SBATCH --signal=USR1@90` SLURM sends SIGUSR1 shortly before a
// job's time runs out (Lightning's SLURMEnvironment listens for it, saves a checkpoint and
// requeues the job); `onRequeueSignal` lets a training loop do the same.

/**
 * Calls `handler` whenever this process receives `signal` (default SIGUSR1, SLURM's requeue
 * signal), on Node, Bun (`process.on`) and Deno (`Deno.addSignalListener`). While installed the
 * signal no longer ends the process. Returns a function that uninstalls the handler (idempotent).
 * Throws where the runtime cannot listen for the signal (Windows, a Deno without the API).
 */
export function onRequeueSignal(
  handler: (signal: string) => void | Promise<void>,
  signal: "SIGUSR1" | "SIGUSR2" | "SIGTERM" = "SIGUSR1",
): () => void {
  if (typeof handler !== "function") {
    throw new TypeError(`plait: onRequeueSignal: handler must be a function, got ${typeof handler}`);
  }
  const g = globalThis as any;
  const listener = () => {
    void handler(signal);
  };
  let installed = true;
  if (g.Deno && typeof g.Deno.addSignalListener === "function") {
    g.Deno.addSignalListener(signal, listener);
    return () => {
      if (installed) g.Deno.removeSignalListener(signal, listener);
      installed = false;
    };
  }
  if (g.process && typeof g.process.on === "function") {
    if (g.process.platform === "win32") {
      throw new Error(`plait: onRequeueSignal: ${signal} cannot be listened for on Windows`);
    }
    g.process.on(signal, listener);
    return () => {
      if (installed) g.process.off(signal, listener);
      installed = false;
    };
  }
  throw new Error("plait: onRequeueSignal: this runtime has no way to listen for signals");
}
