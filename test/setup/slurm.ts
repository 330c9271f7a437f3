// What the suites that run under a real SLURM share: whether one is up here, and which suites need
// it. Where none is up they skip, and test/setup/native.ts names them and the command that brings
// one up; with PLAIT_REQUIRE_SLURM=1 (CI, which runs scripts/slurm-up.sh) they run anyway and
// fail, so a SLURM that did not come up cannot pass unnoticed.
import { spawnSync } from "node:child_process";

export const SLURM_SUITES = ["test/slurm.test.ts"];
export const SLURM_INSTALL = "apt-get install -y slurm-wlm munge && scripts/slurm-up.sh (as root)";
export const REQUIRE_SLURM = process.env.PLAIT_REQUIRE_SLURM === "1";

let probed: { reason?: string } | undefined;

/** Runs a SLURM client command for at most 10 s: its stdout, or why it failed. */
export function slurmCommand(cmd: string, args: string[]): { out: string; error?: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 10_000 });
  const said = `${r.stderr ?? ""}`.trim().split("\n").slice(-3).join(" ");
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    return { out: "", error: code === "ENOENT" ? `${cmd} not found` : `${cmd}: ${r.error.message}` };
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
  const sinfo = slurmCommand("sinfo", ["-h", "-N", "-o", "%N %t"]);
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
