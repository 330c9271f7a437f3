import type { MessagePort } from "node:worker_threads";
import { describeError } from "../comm/errors.ts";
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
  const rt = attachRuntime(data.handle, data.threads, data.parentSlot);
  const shm =
    data.worldSize > 1
      ? new ShmComm(data.handle.memory, data.control, data.rank, { timeoutMs: data.timeoutMs, spinMs: data.spinMs })
      : undefined;
  const ctx: RankContext = Object.freeze({
    rank: data.rank,
    worldSize: data.worldSize,
    comm: shm ?? localComm(),
    isMain: data.rank === 0,
  });
  const end = () => shm?.end();
  setWorkerRank({ mode: data.mode, ctx, end });
  post({ type: "ready", stackSlot: rt.k.stackSlot });
  let value: unknown;
  try {
    const mod = await import(data.module);
    if (data.mode === "script") return;
    const fn = mod[data.fn];
    if (typeof fn !== "function") {
      const names = Object.keys(mod).join(", ") || "nothing";
      throw new TypeError(`plait: spawn: ${data.module} has no exported function ${data.fn} (it exports ${names})`);
    }
    value = await fn(ctx, data.args);
  } catch (e) {
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
