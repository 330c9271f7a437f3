// The NCCL communicator of a rank whose devices are CUDA: launch()/spawn() started the ranks
// (threads with ShmComm, or MPI processes), and the unique id travels over that comm; a rank that
// is alone in its launcher's world while the environment names a larger one (torchrun:
// WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) meets its peers at the TCP store on
// MASTER_ADDR:MASTER_PORT instead. The strategies then run over the returned comm unchanged.
import { deviceCount } from "../../ffi/cuda/runtime.ts";
import { NcclComm } from "./nccl.ts";
import type { Comm } from "./types.ts";

export interface NcclWorldOptions {
  /** This rank's CUDA device; default LOCAL_RANK under torchrun, else the rank modulo the devices CUDA reports. */
  device?: number;
  /** Timeout of the rendezvous, the init and every collective, in ms. */
  timeoutMs?: number;
  /** The environment to read (default process.env). */
  env?: Record<string, string | undefined>;
}

/** An NcclComm for the rank of `ctx` (a launch()/spawn() context, or any { rank, worldSize, comm }). */
export async function ncclWorld(
  ctx: { rank: number; worldSize: number; comm: Comm },
  opts: NcclWorldOptions = {},
): Promise<NcclComm> {
  const env: Record<string, string | undefined> = opts.env ?? (globalThis as any).process?.env ?? {};
  const timeout = opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs };
  const envWorld = Number(env.WORLD_SIZE ?? "1");
  if (ctx.worldSize === 1 && Number.isInteger(envWorld) && envWorld > 1) {
    const rank = Number(env.RANK);
    const local = env.LOCAL_RANK !== undefined ? Number(env.LOCAL_RANK) : undefined;
    return NcclComm.bootstrap({
      rank,
      worldSize: envWorld,
      device: opts.device ?? local ?? rank % deviceCount(),
      via: "env",
      env,
      ...timeout,
    });
  }
  return NcclComm.bootstrap({
    rank: ctx.rank,
    worldSize: ctx.worldSize,
    device: opts.device ?? ctx.rank % deviceCount(),
    via: ctx.comm,
    ...timeout,
  });
}
