import process from "node:process";
import type { MessagePort } from "node:worker_threads";
import { describeError } from "../comm/errors.ts";
import { HierComm } from "../comm/hier.ts";
import { localComm } from "../comm/local.ts";
import { ShmComm } from "../comm/shm.ts";
import { attachRuntime } from "../core/runtime.ts";
import { type RankContext, setWorkerRank } from "./context.ts";
import type { RankData, RankMessage } from "./world.ts";

/**
 * A rank's life in its worker: join the starting thread's runtime, open the communicator, then
 * re-run the script (launch) or call the module's function (spawn), and report the outcome.
 * A throw is recorded in the control block first, so peers stop at once, then posted. A script
 * rank ends like a process: when its event loop has nothing left to do, the worker exits (code 0),
 * so work the script started without awaiting it still runs to the end.
 */
export async function runRank(data: RankData, port: MessagePort): Promise<void> {
  const post = (m: RankMessage) => port.postMessage(m);
  seeArgv(data.argv, data.execArgv);
  const rt = attachRuntime(data.handle, data.threads, data.parentSlot);
  const shm =
    data.worldSize > 1
      ? new ShmComm(data.handle.memory, data.control, data.rank, { timeoutMs: data.timeoutMs, spinMs: data.spinMs })
      : undefined;
  const local = shm ?? localComm();
  // One process's threads among several (an MPI job): global ranks, hierarchical collectives.
  const outer = data.outer;
  const comm = outer ? new HierComm(local, undefined, outer.processRank, outer.processes) : local;
  const ctx: RankContext = Object.freeze({
    rank: comm.rank,
    worldSize: comm.worldSize,
    comm,
    isMain: comm.rank === 0,
  });
  const end = () => shm?.end();
  setWorkerRank({ mode: data.mode, ctx, end, devices: data.worldSize });
  post({ type: "ready" });
  // The event loop empties while the script (or function) is still awaiting: a promise nothing is
  // left to settle. The worker then exits (Node and Bun: code 13); say why first. (Deno keeps such
  // a worker alive: its peers' collectives time out, naming it.)
  let settled = false;
  const stuck = () => {
    if (!settled) post({ type: "stuck" });
  };
  process.once("beforeExit", stuck);
  let value: unknown;
  try {
    const mod = await import(data.module);
    if (data.mode === "script") {
      settled = true;
      return;
    }
    const fn = mod[data.fn];
    if (typeof fn !== "function") {
      const names = Object.keys(mod).join(", ") || "nothing";
      throw new TypeError(`plait: spawn: ${data.module} has no exported function ${data.fn} (it exports ${names})`);
    }
    value = await fn(ctx, data.args);
    settled = true;
  } catch (e) {
    settled = true;
    shm?.fail(e);
    try {
      post({ type: "error", error: e });
    } catch {
      post({ type: "error", error: describeError(e) }); // not structured-cloneable
    }
    rt.pool.close(); // the pool's threads stop now, not only when this worker is terminated
    return;
  }
  end();
  rt.pool.close();
  try {
    post({ type: "done", value });
  } catch (e) {
    const error = new TypeError(
      `plait: spawn: rank ${data.rank}'s ${data.fn}() returned a value that cannot be sent back (structured clone): ${describeError(e)}`,
    );
    shm?.fail(error);
    post({ type: "error", error });
  }
}

/**
 * Makes this worker's process.argv and process.execArgv (and Deno.args on Deno) those of the
 * thread that started the world, so that a script re-run on every rank parses the same flags
 * and a module that checks whether it is the main script (process.argv[1]) decides alike.
 */
function seeArgv(argv: readonly string[], execArgv: readonly string[]): void {
  if (argv.length > 0) process.argv.splice(0, process.argv.length, ...argv);
  process.execArgv.splice(0, process.execArgv.length, ...execArgv);
  const deno = (globalThis as { Deno?: { args: readonly string[] } }).Deno;
  if (deno && argv.length > 0) {
    try {
      Object.defineProperty(deno, "args", { value: Object.freeze(argv.slice(2)), configurable: true });
    } catch {
      // a Deno whose args cannot be redefined: process.argv still carries them
    }
  }
}
