// MPI (Open MPI or MPICH): where it is and what it is. The comm backend that runs collectives on it
// comes with the MPI issue; this is what `plait env` reports.
import type { LibrarySpec } from "./find.ts";
import { cString, type Probe, probeLibrary } from "./probe.ts";

export const MPI_SPEC: LibrarySpec = {
  name: "MPI",
  env: "PLAIT_MPI",
  sonames: ["libmpi.so.40", "libmpich.so.12", "libmpi.so.12"],
  pattern: /^libmpi(ch)?\.so\.\d+$/,
  install:
    "apt-get install libopenmpi3 (Open MPI) or apt-get install libmpich12 (MPICH), or PLAIT_MPI=/path/to/libmpi.so",
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
