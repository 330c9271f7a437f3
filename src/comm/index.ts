// Collectives: the Comm interface, the world-size-1 comm, and the shared-memory backend.
export { CommError, type CommFailure } from "./errors.ts";
export { HierComm } from "./hier.ts";
export { localComm } from "./local.ts";
export { launchedByMpi, MpiComm, type MpiCommOptions } from "./mpi.ts";
export {
  type DeviceAllocator as NcclAllocator,
  type DeviceTensor as NcclDeviceTensor,
  type DeviceTree as NcclDeviceTree,
  type NcclBootstrapOptions,
  NcclComm,
  type NcclInitOptions,
  shareUniqueId,
} from "./nccl.ts";
export { type NcclWorldOptions, ncclWorld } from "./ncclWorld.ts";
export { storeFromEnv, TcpStore, type TcpStoreOptions } from "./rendezvous.ts";
export { ShmComm, type ShmCommOptions } from "./shm.ts";
export { type CollectiveOptions, type Comm, type ReduceOp, shardRange } from "./types.ts";
