// NCCL: where it is and its version (ncclGetVersion). The comm backend on it comes with the GPU issue.
import type { LibrarySpec } from "./find.ts";
import { type Probe, probeLibrary } from "./probe.ts";

export const NCCL_SPEC: LibrarySpec = {
  name: "NCCL",
  env: "PLAIT_NCCL",
  sonames: ["libnccl.so.2"],
  pattern: /^libnccl\.so\.\d+$/,
  cuda: true,
  wheels: ["nccl"],
  install:
    "apt-get install libnccl2 (from NVIDIA's CUDA repository) or pip install nvidia-nccl-cu12, or PLAIT_NCCL=/path/to/libnccl.so.2",
};

export interface NcclProbe extends Probe {
  /** ncclGetVersion, e.g. "2.23.4". */
  version?: string;
}

/** Finds NCCL and asks its version; usable only where CUDA has a device (see probeCuda). */
export function probeNccl(): NcclProbe {
  return probeLibrary(NCCL_SPEC, ["ncclGetVersion", "ncclCommInitRank"], (lib) => {
    const out = [0];
    const rc = lib.func("int ncclGetVersion(_Out_ int *version)")(out);
    if (rc !== 0) throw new Error(`ncclGetVersion returned ${rc}`);
    const v = out[0];
    // NCCL ≥ 2.9 encodes major·10000 + minor·100 + patch; older ones major·1000 + minor·100 + patch
    const version =
      v >= 20900
        ? `${Math.floor(v / 10000)}.${Math.floor((v % 10000) / 100)}.${v % 100}`
        : `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 100)}.${v % 100}`;
    return { version };
  });
}
