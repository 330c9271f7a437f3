// What the tests of native libraries share: whether this machine has a system BLAS, and which
// suites need one. Where none is installed those suites skip, and test/setup/native.ts names them
// and the install command at the start and the end of the run; with PLAIT_REQUIRE_BLAS=1 (CI,
// which installs OpenBLAS) they run anyway and fail, so a broken install cannot pass unnoticed.
import { execFileSync } from "node:child_process";
import { BLAS_SPEC } from "../ffi/blas.ts";
import { LibraryError, openLibrary } from "../ffi/find.ts";
import { mpiMissing as ffiMpiMissing } from "../ffi/mpi.ts";

export const BLAS_SUITES = ["test/blas.test.ts", "test/blas-ranks.test.ts"];
export const BLAS_INSTALL = "apt-get install -y libopenblas0-pthread";
export const REQUIRE_BLAS = process.env.PLAIT_REQUIRE_BLAS === "1";

let probed: { reason?: string } | undefined;

/** Why no system BLAS can be used here (auto mode's search), or undefined when one can. */
export function blasMissing(): string | undefined {
  if (!probed) {
    try {
      openLibrary(BLAS_SPEC, { kind: "auto" }, ["cblas_sgemm", "cblas_dgemm"]);
      probed = {};
    } catch (e) {
      probed = { reason: e instanceof LibraryError ? e.message : String(e) };
    }
  }
  return probed.reason;
}

/** Whether the BLAS suites skip: no BLAS here, and the run does not require one. */
export const skipBlas = (): boolean => !REQUIRE_BLAS && blasMissing() !== undefined;

// MPI: the suites that start processes with mpirun. They need the launcher on PATH and a libmpi
// that plait can bind (ffi/mpi.ts); PLAIT_REQUIRE_MPI=1 (CI, which installs Open MPI) runs them anyway.
export const MPI_SUITES = ["test/comm-mpi.test.ts", "test/mpi-launch.test.ts"];
export const MPI_INSTALL = "apt-get install -y openmpi-bin libopenmpi-dev";
export const REQUIRE_MPI = process.env.PLAIT_REQUIRE_MPI === "1";

let mpiProbed: { reason?: string } | undefined;

/** Why the MPI suites cannot run here (no mpirun, or no usable libmpi), or undefined when they can. */
export function mpiMissing(): string | undefined {
  if (!mpiProbed) {
    mpiProbed = {};
    try {
      execFileSync("mpirun", ["--version"], { stdio: "pipe", timeout: 10_000 });
    } catch (e) {
      mpiProbed.reason = `mpirun did not run: ${(e as Error).message.split("\n")[0]}`;
    }
    mpiProbed.reason ??= ffiMpiMissing();
  }
  return mpiProbed.reason;
}

/** Whether the MPI suites skip: MPI is missing here, and the run does not require it. */
export const skipMpi = (): boolean => !REQUIRE_MPI && mpiMissing() !== undefined;
