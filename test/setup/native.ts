// vitest globalSetup: where no system BLAS is installed, the BLAS suites skip; this says so, with
// the suites and the one command that installs what they need, before the run and again after it
// (so the note is the last thing printed, not lost above the results).
import { BLAS_INSTALL, BLAS_SUITES, blasMissing, REQUIRE_BLAS } from "../native.ts";

export default function setup(): (() => void) | undefined {
  const reason = blasMissing();
  if (reason === undefined) return undefined;
  const note = REQUIRE_BLAS
    ? `PLAIT_REQUIRE_BLAS=1 but no system BLAS is usable: ${BLAS_SUITES.join(", ")} will fail.\n${reason}`
    : `no system BLAS here: skipping ${BLAS_SUITES.join(", ")} (not run, not passed). Install it with:\n  ${BLAS_INSTALL}`;
  console.warn(`\nplait: ${note}\n`);
  return () => console.warn(`\nplait: ${note}\n`);
}
