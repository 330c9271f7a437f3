// vitest globalSetup: where no system BLAS is installed, the BLAS suites skip; this says so, with
// the suites and the one command that installs what they need, before the run and again after it
// (so the note is the last thing printed, not lost above the results).
import { BLAS_INSTALL, BLAS_SUITES, blasMissing, REQUIRE_BLAS } from "../native.ts";

const SAID = Symbol.for("plait.test.blasNote"); // once per run, not once per vitest project

export default function setup(): (() => void) | undefined {
  const reason = blasMissing();
  const g = globalThis as { [SAID]?: boolean };
  if (reason === undefined || g[SAID]) return undefined;
  g[SAID] = true;
  const note = REQUIRE_BLAS
    ? `PLAIT_REQUIRE_BLAS=1 but no system BLAS is usable: ${BLAS_SUITES.join(", ")} will fail.\n${reason}`
    : `no system BLAS here: skipping ${BLAS_SUITES.join(", ")} (not run, not passed). Install it with:\n  ${BLAS_INSTALL}`;
  console.warn(`\nplait: ${note}\n`);
  return () => console.warn(`\nplait: ${note}\n`);
}
