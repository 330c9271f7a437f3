// What the tests of native libraries share: whether this machine has a system BLAS, and which
// suites need one. Where none is installed those suites skip, and test/setup/native.ts names them
// and the install command at the start and the end of the run; with PLAIT_REQUIRE_BLAS=1 (CI,
// which installs OpenBLAS) they run anyway and fail, so a broken install cannot pass unnoticed.
import { BLAS_SPEC } from "../ffi/blas.ts";
import { LibraryError, openLibrary } from "../ffi/find.ts";

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
