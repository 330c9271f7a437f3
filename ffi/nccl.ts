// NCCL through koffi: where it is and its version (for `plait env`), and the binding NcclComm
// (src/comm/nccl.ts) runs on. The enum values and the config layout below were read from
// src/nccl.h.in of NCCL 2.30.7 (NVIDIA/nccl on GitHub); test/nccl-abi.test.ts checks them against
// an installed nccl.h where one exists. Nothing here loads a library until a function is called.
import { type LibrarySpec, libraryMode, openLibrary } from "./find.ts";
import { declareOpaqueStruct, type NativeFunction } from "./native.ts";
import { type Probe, probeLibrary } from "./probe.ts";

export const NCCL_SPEC: LibrarySpec = {
  name: "NCCL",
  env: "PLAIT_NCCL",
  sonames: ["libnccl.so.2"],
  pattern: /^libnccl\.so\.\d+$/,
  cuda: true,
  wheels: ["nccl"],
  install:
    "apt-get install libnccl2 (from NVIDIA's CUDA repository) or pip install nvidia-nccl-cu13 (nvidia-nccl-cu12 for CUDA 12), or PLAIT_NCCL=/path/to/libnccl.so.2",
};

/** The NCCL release whose nccl.h.in the constants below were read from. */
export const NCCL_HEADER_VERSION = "2.30.7";
/** sizeof(ncclUniqueId): `typedef struct { char internal[128]; } ncclUniqueId;` */
export const NCCL_UNIQUE_ID_BYTES = 128;
/** ncclResult_t, by value. */
export const NCCL_RESULTS = [
  "ncclSuccess",
  "ncclUnhandledCudaError",
  "ncclSystemError",
  "ncclInternalError",
  "ncclInvalidArgument",
  "ncclInvalidUsage",
  "ncclRemoteError",
  "ncclInProgress",
  "ncclTimeout",
] as const;
export const ncclSuccess = 0;
export const ncclInProgress = 7;
/** ncclDataType_t for plait's dtypes. */
export const NCCL_DTYPE = { u8: 1, i32: 2, f16: 6, f32: 7, f64: 8, bf16: 9 } as const;
/** ncclRedOp_t. */
export const NCCL_OP = { sum: 0, prod: 1, max: 2, min: 3, avg: 4 } as const;
/** NCCL_API_MAGIC: the tag ncclConfig_t carries when made by NCCL_CONFIG_INITIALIZER. */
export const NCCL_API_MAGIC = 0xcafebeef;
/** NCCL_CONFIG_UNDEF_INT (INT_MIN): "let NCCL choose". */
export const NCCL_CONFIG_UNDEF_INT = -(2 ** 31);
/**
 * The oldest NCCL plait runs on: 2.14 has non-blocking communicators (ncclConfig_t.blocking),
 * which is how init, collectives and aborts stay off the event loop's back.
 */
export const NCCL_MIN_VERSION = 21400;

/** NCCL_VERSION(x, y, z): x·1000 + y·100 + z up to 2.8, x·10000 + y·100 + z after. */
export function ncclVersionCode(major: number, minor: number, patch: number): number {
  return major <= 2 && minor <= 8 ? major * 1000 + minor * 100 + patch : major * 10000 + minor * 100 + patch;
}

/** "2.23.4" from ncclGetVersion's integer. */
export function ncclVersionString(v: number): string {
  return v >= 20900
    ? `${Math.floor(v / 10000)}.${Math.floor((v % 10000) / 100)}.${v % 100}`
    : `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 100)}.${v % 100}`;
}

/**
 * An ncclConfig_t as NCCL_CONFIG_INITIALIZER of NCCL 2.14.0 makes it, with `blocking` set: size
 * (size_t), magic, version (unsigned), blocking (int). NCCL reads `size` bytes and takes every
 * field a 2.14 config lacks from its defaults, so this stays valid on later releases whose
 * ncclConfig_t is longer.
 */
export function ncclConfig(blocking: boolean): Uint8Array {
  const b = new Uint8Array(24);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, 20n, true); // size: through `blocking`
  v.setUint32(8, NCCL_API_MAGIC, true);
  v.setUint32(12, ncclVersionCode(2, 14, 0), true);
  v.setInt32(16, blocking ? 1 : 0, true);
  v.setInt32(20, NCCL_CONFIG_UNDEF_INT, true);
  return b;
}

/** An NCCL call that returned an error: the call, the code's name and NCCL's own words. */
export class NcclError extends Error {
  override name = "NcclError";
  constructor(
    message: string,
    readonly code: number,
    readonly call: string,
  ) {
    super(message);
  }
}

/** The NCCL functions plait calls; a comm, stream or device pointer is passed as a bigint or number. */
const PROTOTYPES = {
  ncclGetVersion: "int ncclGetVersion(_Out_ int *version)",
  ncclGetUniqueId: "int ncclGetUniqueId(uint8_t *uniqueId)",
  ncclCommInitRank: "int ncclCommInitRank(_Out_ uintptr_t *comm, int nranks, ncclUniqueId commId, int rank)",
  ncclCommInitRankConfig:
    "int ncclCommInitRankConfig(_Out_ uintptr_t *comm, int nranks, ncclUniqueId commId, int rank, uint8_t *config)",
  ncclCommGetAsyncError: "int ncclCommGetAsyncError(void *comm, _Out_ int *asyncError)",
  ncclCommAbort: "int ncclCommAbort(void *comm)",
  ncclCommDestroy: "int ncclCommDestroy(void *comm)",
  ncclCommFinalize: "int ncclCommFinalize(void *comm)",
  ncclCommCount: "int ncclCommCount(void *comm, _Out_ int *count)",
  ncclCommUserRank: "int ncclCommUserRank(void *comm, _Out_ int *rank)",
  ncclCommCuDevice: "int ncclCommCuDevice(void *comm, _Out_ int *device)",
  ncclGetErrorString: "const char *ncclGetErrorString(int result)",
  ncclGetLastError: "const char *ncclGetLastError(void *comm)",
  ncclAllReduce:
    "int ncclAllReduce(void *sendbuff, void *recvbuff, size_t count, int datatype, int op, void *comm, void *stream)",
  ncclBroadcast:
    "int ncclBroadcast(void *sendbuff, void *recvbuff, size_t count, int datatype, int root, void *comm, void *stream)",
  ncclAllGather:
    "int ncclAllGather(void *sendbuff, void *recvbuff, size_t sendcount, int datatype, void *comm, void *stream)",
  ncclReduceScatter:
    "int ncclReduceScatter(void *sendbuff, void *recvbuff, size_t recvcount, int datatype, int op, void *comm, void *stream)",
  ncclGroupStart: "int ncclGroupStart()",
  ncclGroupEnd: "int ncclGroupEnd()",
} as const;

export type NcclFunctions = { readonly [K in keyof typeof PROTOTYPES]: NativeFunction };

/** A loaded NCCL: its functions, where it is, its version, and the error helpers. */
export interface NcclBinding {
  readonly path: string;
  readonly via: string;
  /** ncclGetVersion, e.g. "2.27.3", and its integer code. */
  readonly version: string;
  readonly versionCode: number;
  readonly fn: NcclFunctions;
  /** "ncclRemoteError: remote process exited or there was a network error" for a result code. */
  describe(rc: number): string;
  /** Throws an NcclError for a result other than ncclSuccess (and ncclInProgress when allowed). */
  check(rc: number, call: string, context?: string, comm?: bigint | number): void;
}

let loaded: { key: string; binding: NcclBinding } | undefined;

/**
 * Opens NCCL (the mode: `option`, else PLAIT_NCCL, else auto-discovery including Python wheels)
 * and binds its functions. Throws a LibraryError naming every path tried when none is usable,
 * and for an NCCL older than 2.14.
 */
export function loadNccl(option?: string): NcclBinding {
  const mode = libraryMode(NCCL_SPEC, option, "nccl");
  const key = JSON.stringify(mode);
  if (loaded?.key === key) return loaded.binding;
  declareOpaqueStruct("ncclUniqueId", NCCL_UNIQUE_ID_BYTES);
  let code = 0;
  // the version first, so that an old NCCL is named as such rather than by the symbols it lacks
  const found = openLibrary(NCCL_SPEC, mode, ["ncclGetVersion"], (lib) => {
    const out = [0];
    const rc = lib.func(PROTOTYPES.ncclGetVersion)(out);
    if (rc !== 0) throw new Error(`ncclGetVersion returned ${rc}`);
    code = out[0];
    if (code < NCCL_MIN_VERSION) {
      throw new Error(
        `NCCL ${ncclVersionString(code)} is older than 2.14, the first with non-blocking communicators, which plait needs`,
      );
    }
    const missing = Object.keys(PROTOTYPES).filter((name) => !lib.has(name));
    if (missing.length > 0) throw new Error(`NCCL ${ncclVersionString(code)} lacks ${missing.join(", ")}`);
  });
  const fn = Object.fromEntries(
    Object.entries(PROTOTYPES).map(([name, proto]) => [name, found.lib.func(proto)]),
  ) as unknown as NcclFunctions;
  const describe = (rc: number) => {
    const name = NCCL_RESULTS[rc] ?? `ncclResult ${rc}`;
    let text = "";
    try {
      text = String(fn.ncclGetErrorString(rc) ?? "");
    } catch {}
    return text ? `${name}: ${text}` : name;
  };
  const binding: NcclBinding = {
    path: found.path,
    via: found.via,
    version: ncclVersionString(code),
    versionCode: code,
    fn,
    describe,
    check(rc, call, context, comm) {
      if (rc === ncclSuccess) return;
      let last = "";
      if (comm !== undefined) {
        try {
          last = String(fn.ncclGetLastError(comm) ?? "");
        } catch {}
      }
      const where = context ? ` (${context})` : "";
      throw new NcclError(`${call} failed${where}: ${describe(rc)}${last ? `; NCCL says: ${last}` : ""}`, rc, call);
    },
  };
  loaded = { key, binding };
  return binding;
}

/** A fresh unique id from ncclGetUniqueId: the 128 bytes every rank must hand to ncclCommInitRank. */
export function ncclUniqueId(nccl: NcclBinding = loadNccl()): Uint8Array {
  const id = new Uint8Array(NCCL_UNIQUE_ID_BYTES);
  nccl.check(nccl.fn.ncclGetUniqueId(id), "ncclGetUniqueId");
  return id;
}

export interface NcclProbe extends Probe {
  /** ncclGetVersion, e.g. "2.23.4". */
  version?: string;
}

/** Finds NCCL and asks its version; usable only where CUDA has a device (see probeCuda). */
export function probeNccl(): NcclProbe {
  return probeLibrary(NCCL_SPEC, ["ncclGetVersion", "ncclCommInitRank"], (lib) => {
    const out = [0];
    const rc = lib.func(PROTOTYPES.ncclGetVersion)(out);
    if (rc !== 0) throw new Error(`ncclGetVersion returned ${rc}`);
    return { version: ncclVersionString(out[0]) };
  });
}
