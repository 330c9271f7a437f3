// MPI (Open MPI or MPICH): where it is, what it is (`plait env`), and the bindings the MPI comm
// backend (src/comm/mpi.ts) calls. The two ABIs differ in how handles are spelled: Open MPI's
// are addresses of its predefined globals (MPI_COMM_WORLD is &ompi_mpi_comm_world) and its
// MPI_Request is a pointer; MPICH's (and its derivatives': Intel MPI, MVAPICH) are int constants
// from mpi.h and its MPI_Request is an int. Every buffer, count array and request slot is passed
// as an address in plait's WebAssembly.Memory, so nothing is copied and non-blocking calls may
// keep the pointers after they return (a shared memory never moves).
import { existsSync } from "node:fs";
import { LibraryError, type LibrarySpec, libraryMode, openLibrary, readEnv } from "./find.ts";
import { message, type NativeFunction, type NativeLibrary, openNative } from "./native.ts";
import { cString, type Probe, probeLibrary } from "./probe.ts";

export const MPI_SPEC: LibrarySpec = {
  name: "MPI",
  env: "PLAIT_MPI",
  sonames: ["libmpi.so.40", "libmpich.so.12", "libmpi.so.12"],
  pattern: /^libmpi(ch)?\.so\.\d+$/,
  install:
    "apt-get install -y openmpi-bin libopenmpi-dev (Open MPI: mpirun and libmpi.so.40 from libopenmpi3) or apt-get install -y mpich (MPICH: libmpich12), or PLAIT_MPI=/path/to/libmpi.so",
};

export interface MpiProbe extends Probe {
  /** "Open MPI", "MPICH", "Intel MPI", or the first words of the version string. */
  vendor?: string;
  version?: string;
  /** MPI_Get_library_version(), first line. */
  library?: string;
  /** The MPI standard it implements (MPI_Get_version), e.g. "3.1". */
  standard?: string;
}

/**
 * Finds MPI and asks its version. MPI_Get_library_version and MPI_Get_version are the calls the
 * standard allows before MPI_Init, so nothing is initialised: whether a job can start (a launcher,
 * PMIx) is known only when a communicator is made.
 */
export function probeMpi(): MpiProbe {
  return probeLibrary(MPI_SPEC, ["MPI_Get_library_version", "MPI_Init_thread"], (lib) => {
    const libraryVersion = lib.func("int MPI_Get_library_version(_Out_ uint8_t *version, _Out_ int *length)");
    const getVersion = lib.func("int MPI_Get_version(_Out_ int *version, _Out_ int *subversion)");
    const buf = new Uint8Array(8192); // MPI_MAX_LIBRARY_VERSION_STRING is 256 (Open MPI) to 8192 (MPICH)
    const len = [0];
    const rc = libraryVersion(buf, len);
    if (rc !== 0) throw new Error(`MPI_Get_library_version returned ${rc}`);
    const text = cString(buf, len[0]).trim();
    const [major, minor] = [[0], [0]];
    getVersion(major, minor);
    return {
      ...vendorOf(text),
      library: text.split("\n")[0].trim(),
      standard: `${major[0]}.${minor[0]}`,
      reason: "MPI_Init not called: plait env asks only the library's version (allowed before MPI_Init)",
    };
  });
}

function vendorOf(text: string): { vendor: string; version?: string } {
  let m = /Open MPI v([\w.]+)/.exec(text);
  if (m) return { vendor: "Open MPI", version: m[1] };
  m = /MPICH Version:\s*([\w.]+)/.exec(text);
  if (m) return { vendor: "MPICH", version: m[1] };
  m = /Intel\(R\) MPI Library ([\w.]+)/.exec(text);
  if (m) return { vendor: "Intel MPI", version: m[1] };
  return { vendor: text.split(/[\s,]/).slice(0, 2).join(" ") };
}

/** Which of the two MPI ABIs a library speaks. */
export type MpiAbiKind = "openmpi" | "mpich";

/** One ABI's handles and constants, as the numbers passed through the FFI. */
export interface MpiAbi {
  readonly kind: MpiAbiKind;
  /** The C type of a handle in prototypes: a pointer (Open MPI) or an int (MPICH). */
  readonly handle: "intptr_t" | "int";
  /** sizeof(MPI_Request). */
  readonly requestBytes: number;
  readonly commWorld: number;
  /** MPI_BYTE: every buffer is moved as bytes. */
  readonly byte: number;
  readonly infoNull: number;
  readonly errorsReturn: number;
  readonly inPlace: number;
  /** MPI_STATUS_IGNORE, which is also MPI_STATUSES_IGNORE in both ABIs. */
  readonly statusIgnore: number;
  readonly anySource: number;
  readonly commTypeShared: number;
  readonly threadFunneled: number;
}

/** MPICH's mpi.h (3.x and 4.x; Intel MPI and MVAPICH keep it): handles are int constants. */
const MPICH_ABI: Omit<MpiAbi, "kind"> = {
  handle: "int",
  requestBytes: 4,
  commWorld: 0x44000000,
  byte: 0x4c00010d,
  infoNull: 0x1c000000,
  errorsReturn: 0x54000001,
  inPlace: -1,
  statusIgnore: 1,
  anySource: -2,
  commTypeShared: 1,
  threadFunneled: 1,
};

/** The MPI functions the comm backend calls, bound for one library and its ABI. */
export interface MpiBinding {
  readonly path: string;
  readonly via: string;
  readonly abi: MpiAbi;
  readonly vendor: string;
  readonly version?: string;
  /** MPI_Get_library_version's first line. */
  readonly library: string;
  /** Raw bindings, named as in C; each returns MPI's error code (0 is MPI_SUCCESS). */
  readonly fn: Readonly<Record<MpiFunction, NativeFunction>>;
  /** Throws an Error naming `what` and MPI's own message when `rc` is not MPI_SUCCESS. */
  check(rc: number, what: string): void;
  /** MPI_Initialized, MPI_Finalized, MPI_Is_thread_main as booleans (callable from any thread). */
  flag(name: "MPI_Initialized" | "MPI_Finalized" | "MPI_Is_thread_main"): boolean;
}

/** C prototypes, `H` standing for the ABI's handle type. Buffers and request slots are addresses. */
const PROTOTYPES = {
  MPI_Initialized: "int MPI_Initialized(_Out_ int *flag)",
  MPI_Finalized: "int MPI_Finalized(_Out_ int *flag)",
  MPI_Is_thread_main: "int MPI_Is_thread_main(_Out_ int *flag)",
  MPI_Init_thread: "int MPI_Init_thread(intptr_t argc, intptr_t argv, int required, _Out_ int *provided)",
  MPI_Finalize: "int MPI_Finalize(void)",
  MPI_Abort: "int MPI_Abort(H comm, int code)",
  MPI_Comm_rank: "int MPI_Comm_rank(H comm, _Out_ int *rank)",
  MPI_Comm_size: "int MPI_Comm_size(H comm, _Out_ int *size)",
  MPI_Comm_dup: "int MPI_Comm_dup(H comm, _Out_ H *out)",
  MPI_Comm_split_type: "int MPI_Comm_split_type(H comm, int type, int key, H info, _Out_ H *out)",
  MPI_Comm_set_errhandler: "int MPI_Comm_set_errhandler(H comm, H handler)",
  MPI_Error_string: "int MPI_Error_string(int code, _Out_ uint8_t *text, _Out_ int *length)",
  MPI_Isend: "int MPI_Isend(intptr_t buf, int count, H type, int dest, int tag, H comm, intptr_t request)",
  MPI_Irecv: "int MPI_Irecv(intptr_t buf, int count, H type, int source, int tag, H comm, intptr_t request)",
  MPI_Test: "int MPI_Test(intptr_t request, intptr_t flag, intptr_t status)",
  MPI_Testall: "int MPI_Testall(int count, intptr_t requests, intptr_t flag, intptr_t statuses)",
  MPI_Cancel: "int MPI_Cancel(intptr_t request)",
  MPI_Iallgather:
    "int MPI_Iallgather(intptr_t sendbuf, int sendcount, H sendtype, intptr_t recvbuf, int recvcount, H recvtype, H comm, intptr_t request)",
  MPI_Ibcast: "int MPI_Ibcast(intptr_t buf, int count, H type, int root, H comm, intptr_t request)",
} as const;

export type MpiFunction = keyof typeof PROTOTYPES;

/** Launcher variables of MPICH's Hydra (and PMI-1/2 launchers) that Open MPI's mpirun does not set. */
const PMI_VARIABLES = ["PMI_SIZE", "PMI_RANK", "MPI_LOCALNRANKS", "PMI_FD"];

/**
 * The spec to search in auto mode: under a launcher that speaks PMI and is not Open MPI's
 * (MPICH's mpiexec.hydra), MPICH's sonames come first, since Open MPI's library would start a
 * world of one there.
 */
function specForLauncher(): LibrarySpec {
  const pmi = PMI_VARIABLES.some((v) => readEnv(v) !== undefined) && readEnv("OMPI_COMM_WORLD_SIZE") === undefined;
  if (!pmi) return MPI_SPEC;
  return { ...MPI_SPEC, sonames: ["libmpich.so.12", "libmpi.so.12", "libmpi.so.40"] };
}

let bound: MpiBinding | undefined;

/**
 * Finds and binds MPI (PLAIT_MPI: a path, "off", or unset for the search), with RTLD_GLOBAL so
 * that Open MPI's plugins, which it dlopens later, see its symbols. Throws LibraryError when no
 * library is found, none loads, or the one found has an ABI plait does not know.
 */
export function loadMpi(): MpiBinding {
  if (bound) return bound;
  const mode = libraryMode(MPI_SPEC);
  const spec = mode.kind === "auto" ? specForLauncher() : MPI_SPEC;
  let abi: MpiAbi | undefined;
  let text = "";
  const found = openLibrary(
    spec,
    mode,
    ["MPI_Init_thread", "MPI_Iallgather", "MPI_Ibcast", "MPI_Comm_split_type"],
    (lib) => {
      text = libraryVersion(lib);
      abi = detectAbi(lib, text);
    },
    { global: true },
  );
  const lib = found.lib;
  const a = abi!;
  const fn = Object.fromEntries(
    Object.entries(PROTOTYPES).map(([name, proto]) => [name, lib.func(proto.replace(/\bH\b/g, a.handle))]),
  ) as Record<MpiFunction, NativeFunction>;
  const check = (rc: number, what: string) => {
    if (rc === 0) return;
    const buf = new Uint8Array(1024); // MPI_MAX_ERROR_STRING: 256 (Open MPI), 1024 (MPICH)
    const len = [0];
    let why = `error code ${rc}`;
    try {
      if (fn.MPI_Error_string(rc, buf, len) === 0) why = `${cString(buf, len[0]).trim()} (error code ${rc})`;
    } catch {}
    throw new Error(`plait: ${what} failed in ${found.path}: ${why}`);
  };
  const flag = (name: "MPI_Initialized" | "MPI_Finalized" | "MPI_Is_thread_main") => {
    const out = [0];
    check(fn[name](out), name);
    return out[0] !== 0;
  };
  bound = {
    path: found.path,
    via: found.via,
    abi: a,
    ...vendorOf(text),
    library: text.split("\n")[0].trim(),
    fn,
    check,
    flag,
  };
  return bound;
}

function libraryVersion(lib: NativeLibrary): string {
  const get = lib.func("int MPI_Get_library_version(_Out_ uint8_t *version, _Out_ int *length)");
  const buf = new Uint8Array(8192);
  const len = [0];
  const rc = get(buf, len);
  if (rc !== 0) throw new Error(`MPI_Get_library_version returned ${rc}`);
  return cString(buf, len[0]).trim();
}

/** Open MPI when the library exports its predefined globals; MPICH by its version string. */
function detectAbi(lib: NativeLibrary, text: string): MpiAbi {
  if (lib.has("ompi_mpi_comm_world")) return openMpiAbi(lib);
  if (/MPICH|Intel\(R\) MPI|MVAPICH/.test(text)) return { kind: "mpich", ...MPICH_ABI };
  throw new Error(
    `unknown MPI ABI (${text.split("\n")[0].trim() || "no version string"}): plait speaks Open MPI's and MPICH's (Intel MPI, MVAPICH); set PLAIT_MPI to one of those`,
  );
}

/** Open MPI's handles: the addresses of its predefined globals, looked up with dlsym. */
function openMpiAbi(lib: NativeLibrary): MpiAbi {
  const address = symbolLookup(lib.path);
  return {
    kind: "openmpi",
    handle: "intptr_t",
    requestBytes: 8,
    commWorld: address("ompi_mpi_comm_world"),
    byte: address("ompi_mpi_byte"),
    infoNull: address("ompi_mpi_info_null"),
    errorsReturn: address("ompi_mpi_errors_return"),
    inPlace: 1,
    statusIgnore: 0,
    anySource: -1,
    commTypeShared: 0,
    threadFunneled: 1,
  };
}

/** dlsym over the library's own handle (RTLD_NOLOAD: it is loaded already), else RTLD_DEFAULT. */
function symbolLookup(path: string): (name: string) => number {
  let libc: NativeLibrary | undefined;
  const tried: string[] = [];
  for (const name of ["libc.so.6", "libdl.so.2", "libc.so"]) {
    try {
      const l = openNative(name);
      if (l.has("dlsym") && l.has("dlopen")) {
        libc = l;
        break;
      }
      tried.push(`${name}: no dlsym`);
    } catch (e) {
      tried.push(`${name}: ${message(e)}`);
    }
  }
  if (!libc) throw new Error(`cannot look up Open MPI's handles: no dlsym (${tried.join("; ")})`);
  const dlopen = libc.func("intptr_t dlopen(const char *path, int flags)");
  const dlsym = libc.func("intptr_t dlsym(intptr_t handle, const char *name)");
  const RTLD_LAZY_NOLOAD = 0x1 | 0x4;
  const handle = Number(dlopen(path.includes("/") && !existsSync(path) ? null : path, RTLD_LAZY_NOLOAD)) || 0;
  return (name) => {
    const at = Number(dlsym(handle, name));
    if (!at) throw new Error(`Open MPI's ${name} not found by dlsym in ${path}`);
    return at;
  };
}

/** Whether loadMpi() would find a library, without throwing: the reason when it would not. */
export function mpiMissing(): string | undefined {
  try {
    loadMpi();
    return undefined;
  } catch (e) {
    return e instanceof LibraryError ? e.message : message(e);
  }
}
