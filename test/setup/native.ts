// vitest globalSetup: where no system BLAS (or no MPI, or no SLURM up) is there, the suites that need it skip;
// this says so, with the suites and the one command that installs what they need, before the run
// and again after it (so the note is the last thing printed, not lost above the results).
import {
  BLAS_INSTALL,
  BLAS_SUITES,
  blasMissing,
  MPI_INSTALL,
  MPI_SUITES,
  mpiMissing,
  REQUIRE_BLAS,
  REQUIRE_MPI,
} from "../native.ts";
import { slurmNote } from "./slurm.ts";

const SAID = Symbol.for("plait.test.nativeNote"); // once per run, not once per vitest project

function note(
  what: string,
  reason: string | undefined,
  required: boolean,
  variable: string,
  suites: string[],
  install: string,
) {
  if (reason === undefined) return undefined;
  return required
    ? `${variable}=1 but no ${what} is usable: ${suites.join(", ")} will fail.\n${reason}`
    : `no ${what} here: skipping ${suites.join(", ")} (not run, not passed). Install it with:\n  ${install}\n(${reason.split("\n")[0]})`;
}

export default function setup(): (() => void) | undefined {
  const g = globalThis as { [SAID]?: boolean };
  if (g[SAID]) return undefined;
  const notes = [
    note("system BLAS", blasMissing(), REQUIRE_BLAS, "PLAIT_REQUIRE_BLAS", BLAS_SUITES, BLAS_INSTALL),
    note("MPI", mpiMissing(), REQUIRE_MPI, "PLAIT_REQUIRE_MPI", MPI_SUITES, MPI_INSTALL),
    slurmNote(),
  ].filter((n): n is string => n !== undefined);
  if (notes.length === 0) return undefined;
  g[SAID] = true;
  const text = notes.map((n) => `\nplait: ${n}\n`).join("");
  console.warn(text);
  return () => console.warn(text);
}
