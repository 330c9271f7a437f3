// These machines set OPENBLAS_CORETYPE (Haswell) and OPENBLAS_L2_SIZE, which pin OpenBLAS to an
// older kernel than its own CPU detection picks (about half the speed on the AVX-512 machines).
// `npm run bench` unsets both for its own process and the children it starts (numpy, plait's
// BLAS), so each library runs the kernel it would pick on a machine that sets nothing; the values
// it found are recorded in the results. Tests and CI keep the machine's setting.
const VARS = ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"] as const;

/** What the machine had set before the bench unset it ("(unset)": nothing). */
export const machineOpenblasEnv: Record<string, string> = {};

export function unsetOpenblasEnv(): void {
  for (const name of VARS) {
    if (!(name in machineOpenblasEnv)) machineOpenblasEnv[name] = process.env[name] ?? "(unset)";
    delete process.env[name];
  }
}
