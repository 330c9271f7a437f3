// Which cluster environment this process runs in, and its place in the job, from environment
// variables alone, by Lightning 2.x's rules (lightning.fabric.plugins.environments). The order is
// Lightning's: TorchElastic → SLURM → LSF → MPI → the Lightning-style default; Kubeflow is never
// guessed (upstream's guess gave false positives) and is used only when asked for.
import { readFileSync } from "node:fs";
import { hostname as osHostname } from "node:os";
import { checkOptions } from "../core/options.ts";
import { firstHost } from "./hostlist.ts";

export type EnvironmentName = "lightning" | "slurm" | "lsf" | "torchelastic" | "kubeflow" | "mpi";

export const ENVIRONMENT_NAMES: readonly EnvironmentName[] = [
  "lightning",
  "slurm",
  "lsf",
  "torchelastic",
  "kubeflow",
  "mpi",
];

/** Where this process sits in a job. */
export interface ClusterEnvironment {
  /** One of `EnvironmentName`, or the name a user-made environment gives itself. */
  name: EnvironmentName | (string & {});
  /** Processes in the whole job. */
  worldSize: number;
  /** This process's rank in the job, 0 ≤ globalRank < worldSize. */
  globalRank: number;
  /** This process's rank on its node. */
  localRank: number;
  /** This process's node. */
  nodeRank: number;
  /** The host rank 0 listens on for the rendezvous. */
  mainAddress: string;
  /** Its port; 0 when nothing sets one (a launcher then picks a free port, as Lightning's does). */
  mainPort: number;
  /** Whether a launcher (srun, jsrun, torchrun, mpirun, a parent process) started the processes. */
  createsProcessesExternally: boolean;
}

export type EnvironmentMap = Readonly<Record<string, string | undefined>>;

export interface DetectOptions {
  /**
   * An environment by name instead of detection (`"kubeflow"` is only ever used this way), or
   * an object of your own with every field of `ClusterEnvironment`, which is checked and returned.
   */
  use?: EnvironmentName | ClusterEnvironment;
  /** This machine's host name, for LSF's node rank (default: `os.hostname()`). */
  hostname?: string;
}

/** A bad or missing variable: names the environment, the variable, what was expected and what came. */
export class ClusterEnvironmentError extends Error {
  readonly environment: string;
  readonly variable: string | null;
  constructor(environment: string, variable: string | null, message: string) {
    super(`plait: cluster environment ${environment}: ${message}`);
    this.name = "ClusterEnvironmentError";
    this.environment = environment;
    this.variable = variable;
  }
}

const DEFAULT_ADDRESS = "127.0.0.1";
const DEFAULT_PORT = 12910;

/** The names of every variable any environment reads (what a restricted runtime is asked for). */
export const ENVIRONMENT_VARIABLES: readonly string[] = [
  "TORCHELASTIC_RUN_ID",
  "RANK",
  "WORLD_SIZE",
  "LOCAL_RANK",
  "LOCAL_WORLD_SIZE",
  "GROUP_RANK",
  "NODE_RANK",
  "MASTER_ADDR",
  "MASTER_PORT",
  "SLURM_NTASKS",
  "SLURM_NTASKS_PER_NODE",
  "SLURM_PROCID",
  "SLURM_LOCALID",
  "SLURM_NODEID",
  "SLURM_NODELIST",
  "SLURM_JOB_ID",
  "SLURM_JOB_NAME",
  "LSB_JOBID",
  "LSB_DJOB_RANKFILE",
  "JSM_NAMESPACE_SIZE",
  "JSM_NAMESPACE_RANK",
  "JSM_NAMESPACE_LOCAL_RANK",
  "OMPI_COMM_WORLD_SIZE",
  "OMPI_COMM_WORLD_RANK",
  "OMPI_COMM_WORLD_LOCAL_RANK",
  "OMPI_COMM_WORLD_LOCAL_SIZE",
  "PMI_SIZE",
  "PMI_RANK",
  "PMIX_RANK",
  "MPI_LOCALRANKID",
  "MPI_LOCALNRANKS",
  "PMI_LOCAL_RANK",
  "MV2_COMM_WORLD_LOCAL_RANK",
  "PALS_LOCAL_RANKID",
];

/**
 * The runtime's environment variables: `process.env` on Node, `Bun.env` on Bun,
 * `Deno.env.toObject()` on Deno; under a Deno without full `--allow-env`, the variables above that
 * it may read one by one (`--allow-env=SLURM_NTASKS,…`), the rest treated as unset.
 */
export function runtimeEnvironment(): EnvironmentMap {
  const g = globalThis as any;
  if (g.Deno?.env && typeof g.Deno.env.toObject === "function") {
    try {
      return g.Deno.env.toObject();
    } catch {
      const out: Record<string, string> = {};
      for (const name of ENVIRONMENT_VARIABLES) {
        try {
          const v = g.Deno.env.get(name);
          if (v !== undefined) out[name] = v;
        } catch {}
      }
      return out;
    }
  }
  if (g.Bun?.env) return g.Bun.env;
  return g.process?.env ?? {};
}

/** Reads variables of one environment, each checked. */
class Reader {
  constructor(
    readonly env: EnvironmentMap,
    readonly name: string,
  ) {}
  has(v: string): boolean {
    return this.env[v] !== undefined;
  }
  str(v: string): string | undefined {
    return this.env[v];
  }
  fail(variable: string | null, message: string): never {
    throw new ClusterEnvironmentError(this.name, variable, message);
  }
  required(v: string, what: string): string {
    const s = this.env[v];
    if (s === undefined) this.fail(v, `${v} is not set; expected ${what}`);
    return s;
  }
  /** A non-negative integer (min 1 for sizes); undefined when unset and `required` is false. */
  int(v: string, what: string, min = 0): number | undefined {
    const s = this.env[v];
    if (s === undefined) return undefined;
    const t = s.trim();
    if (!/^\d+$/.test(t) || !Number.isSafeInteger(Number(t)) || Number(t) < min) {
      this.fail(v, `${v} must be ${what} (an integer ≥ ${min}), got ${JSON.stringify(s)}`);
    }
    return Number(t);
  }
  needInt(v: string, what: string, min = 0): number {
    this.required(v, `${what} (an integer ≥ ${min})`);
    return this.int(v, what, min)!;
  }
  /** The first of `vars` that is set, as an integer; undefined when none is. */
  firstInt(vars: readonly string[], what: string, min = 0): number | undefined {
    const v = vars.find((x) => this.has(x));
    return v === undefined ? undefined : this.int(v, what, min);
  }
  needFirstInt(vars: readonly string[], what: string, min = 0): number {
    const n = this.firstInt(vars, what, min);
    if (n === undefined) this.fail(vars[0], `none of ${vars.join(", ")} is set; expected ${what}`);
    return n;
  }
  port(v: string): number | undefined {
    const n = this.int(v, "a TCP port", 1);
    if (n !== undefined && n > 65535)
      this.fail(v, `${v} must be a TCP port (1 to 65535), got ${JSON.stringify(this.env[v])}`);
    return n;
  }
  address(v: string): string | undefined {
    const s = this.env[v];
    if (s !== undefined && s.trim() === "") this.fail(v, `${v} must be a host name or address, got an empty string`);
    return s?.trim();
  }
}

const isInteractiveSlurm = (env: EnvironmentMap) =>
  env.SLURM_JOB_NAME === "bash" || env.SLURM_JOB_NAME === "interactive";

const MPI_SIZE = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"] as const;
const MPI_RANK = ["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"] as const;
const MPI_LOCAL_RANK = [
  "OMPI_COMM_WORLD_LOCAL_RANK",
  "MPI_LOCALRANKID",
  "PMI_LOCAL_RANK",
  "MV2_COMM_WORLD_LOCAL_RANK",
  "PALS_LOCAL_RANKID",
] as const;
const MPI_LOCAL_SIZE = ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"] as const;

/** Whether each environment's `detect()` would say yes (Kubeflow never does). */
const DETECT: Record<EnvironmentName, (env: EnvironmentMap) => boolean> = {
  torchelastic: (env) => env.TORCHELASTIC_RUN_ID !== undefined,
  slurm: (env) => env.SLURM_NTASKS !== undefined && !isInteractiveSlurm(env),
  lsf: (env) =>
    ["LSB_JOBID", "LSB_DJOB_RANKFILE", "JSM_NAMESPACE_LOCAL_RANK", "JSM_NAMESPACE_SIZE"].every(
      (v) => env[v] !== undefined,
    ),
  // Lightning asks mpi4py for COMM_WORLD's size > 1; here the launchers' size variables say it.
  mpi: (env) => {
    const v = MPI_SIZE.find((x) => env[x] !== undefined);
    return v !== undefined && env[v]!.trim() !== "1";
  },
  kubeflow: () => false,
  lightning: () => true,
};

const ORDER: readonly EnvironmentName[] = ["torchelastic", "slurm", "lsf", "mpi", "lightning"];

function readTorchElastic(r: Reader): ClusterEnvironment {
  return {
    name: "torchelastic",
    worldSize: r.needInt("WORLD_SIZE", "the number of processes", 1),
    globalRank: r.needInt("RANK", "this process's global rank"),
    localRank: r.needInt("LOCAL_RANK", "this process's rank on its node"),
    nodeRank: r.int("GROUP_RANK", "this node's rank") ?? 0,
    mainAddress: r.address("MASTER_ADDR") ?? DEFAULT_ADDRESS,
    mainPort: r.port("MASTER_PORT") ?? DEFAULT_PORT,
    createsProcessesExternally: true,
  };
}

function readSlurm(r: Reader): ClusterEnvironment {
  const worldSize = r.needInt("SLURM_NTASKS", "the number of tasks", 1);
  if (worldSize > 1 && !r.has("SLURM_NTASKS_PER_NODE")) {
    r.fail(
      "SLURM_NTASKS_PER_NODE",
      `SLURM_NTASKS is ${worldSize} but SLURM_NTASKS_PER_NODE is not set: \`--ntasks=${worldSize}\` alone is not supported. ` +
        `HINT: use \`--ntasks-per-node=${worldSize}\` instead (with \`--nodes\` for several nodes).`,
    );
  }
  let mainAddress = r.address("MASTER_ADDR");
  if (mainAddress === undefined) {
    const list = r.str("SLURM_NODELIST");
    try {
      mainAddress = (list === undefined ? null : firstHost(list)) ?? DEFAULT_ADDRESS;
    } catch (e) {
      r.fail("SLURM_NODELIST", (e as Error).message.replace(/^plait: /, ""));
    }
  }
  let mainPort = r.port("MASTER_PORT");
  if (mainPort === undefined) {
    const job = r.int("SLURM_JOB_ID", "the job id");
    mainPort = job === undefined ? DEFAULT_PORT : Number(String(job).slice(-4)) + 15000;
  }
  return {
    name: "slurm",
    worldSize,
    globalRank: r.needInt("SLURM_PROCID", "this task's global rank"),
    localRank: r.needInt("SLURM_LOCALID", "this task's rank on its node"),
    nodeRank: r.needInt("SLURM_NODEID", "this node's rank"),
    mainAddress,
    mainPort,
    createsProcessesExternally: true,
  };
}

const shortName = (h: string) => h.split(".")[0];

function readLsf(r: Reader, hostname: string): ClusterEnvironment {
  const file = r.required("LSB_DJOB_RANKFILE", "the path of LSF's rank file (set by jsrun)");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    r.fail("LSB_DJOB_RANKFILE", `LSB_DJOB_RANKFILE names ${file}, which cannot be read: ${(e as Error).message}`);
  }
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  if (lines.length === 0) r.fail("LSB_DJOB_RANKFILE", `the rank file ${file} is empty; expected one host a line`);
  const hosts = lines.slice(1).filter((l) => l !== ""); // the first line is the launch node
  if (hosts.length === 0) {
    r.fail("LSB_DJOB_RANKFILE", `the rank file ${file} lists only the launch node; expected compute hosts after it`);
  }
  const unique = [...new Set(hosts)];
  let nodeRank = unique.indexOf(hostname);
  if (nodeRank < 0) nodeRank = unique.findIndex((h) => shortName(h) === shortName(hostname));
  if (nodeRank < 0) {
    r.fail(
      "LSB_DJOB_RANKFILE",
      `this host, ${hostname}, is not among the rank file's hosts (${unique.join(", ")}); expected it there to give the node rank`,
    );
  }
  const jobId = r.needInt("LSB_JOBID", "the LSF job id");
  return {
    name: "lsf",
    worldSize: r.needInt("JSM_NAMESPACE_SIZE", "the number of processes", 1),
    globalRank: r.needInt("JSM_NAMESPACE_RANK", "this process's global rank"),
    localRank: r.needInt("JSM_NAMESPACE_LOCAL_RANK", "this process's rank on its node"),
    nodeRank,
    mainAddress: unique[0],
    mainPort: r.port("MASTER_PORT") ?? (jobId % 1000) + 10000,
    createsProcessesExternally: true,
  };
}

function readKubeflow(r: Reader): ClusterEnvironment {
  const globalRank = r.needInt("RANK", "this pod's rank");
  r.required("MASTER_ADDR", "the main pod's address");
  r.required("MASTER_PORT", "the main pod's port");
  return {
    name: "kubeflow",
    worldSize: r.needInt("WORLD_SIZE", "the number of pods", 1),
    globalRank,
    localRank: 0, // one process per pod
    nodeRank: globalRank,
    mainAddress: r.address("MASTER_ADDR")!,
    mainPort: r.port("MASTER_PORT")!,
    createsProcessesExternally: true,
  };
}

function readMpi(r: Reader): ClusterEnvironment {
  const worldSize = r.needFirstInt(MPI_SIZE, "the number of MPI processes", 1);
  const globalRank = r.needFirstInt(MPI_RANK, "this process's MPI rank");
  const localRank = r.needFirstInt(MPI_LOCAL_RANK, "this process's rank on its node");
  // Without MPI calls only the launcher's per-node count gives the node: exact under the default
  // by-slot mapping (consecutive ranks fill a node); 0 when no launcher variable says it.
  const localSize = r.firstInt(MPI_LOCAL_SIZE, "the number of processes on this node", 1);
  return {
    name: "mpi",
    worldSize,
    globalRank,
    localRank,
    nodeRank: localSize === undefined ? 0 : Math.floor(globalRank / localSize),
    mainAddress: r.address("MASTER_ADDR") ?? DEFAULT_ADDRESS,
    mainPort: r.port("MASTER_PORT") ?? 0,
    createsProcessesExternally: true,
  };
}

function readLightning(r: Reader): ClusterEnvironment {
  const localRank = r.int("LOCAL_RANK", "this process's rank on its node") ?? 0;
  const nodeRank = r.int("NODE_RANK", "this node's rank") ?? r.int("GROUP_RANK", "this node's rank") ?? 0;
  const worldSize = r.int("WORLD_SIZE", "the number of processes", 1) ?? 1;
  // Lightning's strategy sets the global rank to node_rank × processes per node + local_rank;
  // from the environment: RANK, else that product with LOCAL_WORLD_SIZE, else the local rank on node 0.
  let globalRank = r.int("RANK", "this process's global rank");
  if (globalRank === undefined) {
    const perNode = r.int("LOCAL_WORLD_SIZE", "the number of processes on each node", 1);
    if (perNode !== undefined) globalRank = nodeRank * perNode + localRank;
    else if (nodeRank === 0) globalRank = localRank;
    else {
      r.fail(
        "RANK",
        `node rank ${nodeRank} with neither RANK nor LOCAL_WORLD_SIZE set; expected one of them to give the global rank`,
      );
    }
  }
  return {
    name: "lightning",
    worldSize,
    globalRank,
    localRank,
    nodeRank,
    mainAddress: r.address("MASTER_ADDR") ?? DEFAULT_ADDRESS,
    mainPort: r.port("MASTER_PORT") ?? 0,
    createsProcessesExternally: r.has("LOCAL_RANK"),
  };
}

const READ: Record<EnvironmentName, (r: Reader, hostname: () => string) => ClusterEnvironment> = {
  torchelastic: readTorchElastic,
  slurm: readSlurm,
  lsf: (r, h) => readLsf(r, h()),
  kubeflow: readKubeflow,
  mpi: readMpi,
  lightning: readLightning,
};

/** Checks the ranks against each other; the variable named is the one each came from. */
function validate(
  e: ClusterEnvironment,
  source: Partial<Record<keyof ClusterEnvironment, string>>,
): ClusterEnvironment {
  const fail = (field: keyof ClusterEnvironment, message: string): never => {
    throw new ClusterEnvironmentError(e.name, source[field] ?? field, message);
  };
  const label = (f: keyof ClusterEnvironment) => (source[f] ? `${f} (${source[f]})` : f);
  for (const f of ["worldSize", "globalRank", "localRank", "nodeRank", "mainPort"] as const) {
    const v = e[f];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < (f === "worldSize" ? 1 : 0)) {
      fail(f, `${label(f)} must be an integer ≥ ${f === "worldSize" ? 1 : 0}, got ${JSON.stringify(v)}`);
    }
  }
  if (e.mainPort > 65535) fail("mainPort", `${label("mainPort")} must be a TCP port (0 to 65535), got ${e.mainPort}`);
  for (const f of ["localRank", "nodeRank", "globalRank"] as const) {
    if (e[f] >= e.worldSize) {
      fail(f, `${label(f)} must be less than ${label("worldSize")} = ${e.worldSize}, got ${e[f]}`);
    }
  }
  if (typeof e.mainAddress !== "string" || e.mainAddress === "") {
    fail("mainAddress", `${label("mainAddress")} must be a non-empty string, got ${JSON.stringify(e.mainAddress)}`);
  }
  if (typeof e.createsProcessesExternally !== "boolean") {
    fail(
      "createsProcessesExternally",
      `createsProcessesExternally must be a boolean, got ${typeof e.createsProcessesExternally}`,
    );
  }
  return e;
}

const SOURCES: Record<EnvironmentName, Partial<Record<keyof ClusterEnvironment, string>>> = {
  torchelastic: { worldSize: "WORLD_SIZE", globalRank: "RANK", localRank: "LOCAL_RANK", nodeRank: "GROUP_RANK" },
  slurm: {
    worldSize: "SLURM_NTASKS",
    globalRank: "SLURM_PROCID",
    localRank: "SLURM_LOCALID",
    nodeRank: "SLURM_NODEID",
  },
  lsf: {
    worldSize: "JSM_NAMESPACE_SIZE",
    globalRank: "JSM_NAMESPACE_RANK",
    localRank: "JSM_NAMESPACE_LOCAL_RANK",
    nodeRank: "LSB_DJOB_RANKFILE",
  },
  kubeflow: { worldSize: "WORLD_SIZE", globalRank: "RANK", nodeRank: "RANK" },
  mpi: {},
  lightning: { worldSize: "WORLD_SIZE", localRank: "LOCAL_RANK" },
};

/** The name of the environment detection picks, by Lightning's order (never "kubeflow"). */
export function detectEnvironmentName(env: EnvironmentMap = runtimeEnvironment()): EnvironmentName {
  return ORDER.find((n) => DETECT[n](env))!;
}

/**
 * The cluster environment of this process and its place in the job, from `env` (default: the
 * runtime's environment variables). Pure: reads nothing else, except LSF's rank file and, for
 * LSF's node rank, the host name (`hostname` overrides it). Detection order is Lightning's:
 * TorchElastic (`TORCHELASTIC_RUN_ID`), SLURM (`SLURM_NTASKS`, unless the job is named `bash` or
 * `interactive`), LSF (`LSB_JOBID`, `LSB_DJOB_RANKFILE`, `JSM_NAMESPACE_LOCAL_RANK`,
 * `JSM_NAMESPACE_SIZE`), MPI (`OMPI_COMM_WORLD_SIZE` or `PMI_SIZE` above 1), then the
 * Lightning-style default. `use` names an environment to read instead (Kubeflow only this way),
 * or is an environment object of your own, checked and returned. A missing or bad variable, or a
 * rank not below the world size, throws a `ClusterEnvironmentError` naming the variable, what was
 * expected and what it held.
 */
export function detectEnvironment(
  env: EnvironmentMap = runtimeEnvironment(),
  options?: DetectOptions,
): ClusterEnvironment {
  const opts = checkOptions("detectEnvironment", options, ["use", "hostname"]);
  if (env === null || typeof env !== "object") {
    throw new TypeError(
      `plait: detectEnvironment: env must be an object of variables, got ${env === null ? "null" : typeof env}`,
    );
  }
  const use = opts.use;
  if (use !== undefined && typeof use === "object" && use !== null) {
    if (typeof use.name !== "string" || use.name === "") {
      throw new ClusterEnvironmentError(
        "(yours)",
        null,
        `name must be a non-empty string, got ${JSON.stringify(use.name)}`,
      );
    }
    return validate({ ...use }, {});
  }
  if (use !== undefined && !ENVIRONMENT_NAMES.includes(use as EnvironmentName)) {
    throw new TypeError(
      `plait: detectEnvironment: use must be one of ${ENVIRONMENT_NAMES.join(", ")} or an environment object, got ${JSON.stringify(use)}`,
    );
  }
  if (opts.hostname !== undefined && (typeof opts.hostname !== "string" || opts.hostname === "")) {
    throw new TypeError(
      `plait: detectEnvironment: hostname must be a non-empty string, got ${JSON.stringify(opts.hostname)}`,
    );
  }
  const name = (use as EnvironmentName | undefined) ?? detectEnvironmentName(env);
  const e = READ[name](new Reader(env, name), () => opts.hostname ?? osHostname());
  return validate(e, SOURCES[name]);
}

/** One line about an environment, as `plait env` prints it. */
export function describeEnvironment(e: ClusterEnvironment): string {
  const main =
    e.mainPort === 0 ? `${e.mainAddress} (no port set: a free one at launch)` : `${e.mainAddress}:${e.mainPort}`;
  return (
    `${e.name}: rank ${e.globalRank} of ${e.worldSize} (local rank ${e.localRank}, node ${e.nodeRank}), ` +
    `main ${main}, processes ${e.createsProcessesExternally ? "started by a launcher" : "started by plait"}`
  );
}
