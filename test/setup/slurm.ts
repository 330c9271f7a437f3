// What the suites that run under a real SLURM share: whether one is up here, and which suites need
// it. Where none is up they skip, and test/setup/native.ts names them and the command that brings
// one up; with PLAIT_REQUIRE_SLURM=1 (CI, which runs scripts/slurm-up.sh) they run anyway and
// fail, so a SLURM that did not come up cannot pass unnoticed.
import { spawnSync } from "node:child_process";

export const SLURM_SUITES = ["test/slurm.test.ts"];
export const SLURM_INSTALL = "apt-get install -y slurm-wlm munge && scripts/slurm-up.sh (as root)";
export const REQUIRE_SLURM = process.env.PLAIT_REQUIRE_SLURM === "1";

let probed: { reason?: string } | undefined;

/** Runs a SLURM client command for at most `ms`: its stdout, or why it failed. */
export function slurmCommand(cmd: string, args: string[], ms = 10_000): { out: string; error?: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: ms });
  const said = `${r.stderr ?? ""}`.trim().split("\n").slice(-3).join(" ");
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { out: "", error: `${cmd} not found` };
    if (code === "ETIMEDOUT")
      return { out: "", error: `\`${cmd} ${args.join(" ")}\` did not answer in ${ms / 1000} s` };
    return { out: "", error: `${cmd}: ${r.error.message}` };
  }
  if (r.status !== 0) return { out: r.stdout, error: `\`${cmd} ${args.join(" ")}\` exited with ${r.status}: ${said}` };
  return { out: r.stdout };
}

/** Why no SLURM is usable here (no sinfo, no idle node, no pmix plugin), or undefined when one is. */
export function slurmMissing(): string | undefined {
  if (!probed) probed = { reason: probe() };
  return probed.reason;
}

function probe(): string | undefined {
  // a SLURM that is up answers in milliseconds; with no slurmctld, sinfo retries for about 10 s
  const sinfo = slurmCommand("sinfo", ["-h", "-N", "-o", "%N %t"], 3_000);
  if (sinfo.error) return sinfo.error;
  const nodes = sinfo.out.trim().split("\n").filter(Boolean);
  if (!nodes.some((l) => /\s(idle|mix|alloc)$/.test(l))) {
    return `sinfo shows no node that takes jobs: ${nodes.join(", ") || "(no nodes)"}`;
  }
  const mpi = slurmCommand("srun", ["--mpi=list"]);
  if (mpi.error) return mpi.error;
  if (!/^\s*pmix\b/m.test(`${mpi.out}`)) return `srun --mpi=list shows no pmix plugin: ${mpi.out.trim()}`;
  return undefined;
}

/** Whether the SLURM suites skip: no SLURM up here, and the run does not require one. */
export const skipSlurm = (): boolean => !REQUIRE_SLURM && slurmMissing() !== undefined;

/** What test/setup/native.ts prints before and after the run where no SLURM is up; undefined when one is. */
export function slurmNote(): string | undefined {
  const reason = slurmMissing();
  if (reason === undefined) return undefined;
  return REQUIRE_SLURM
    ? `PLAIT_REQUIRE_SLURM=1 but no SLURM is up: ${SLURM_SUITES.join(", ")} will fail.\n${reason}`
    : `no SLURM up here: skipping ${SLURM_SUITES.join(", ")} (not run, not passed). Bring one up with:\n  ${SLURM_INSTALL}`;
}
