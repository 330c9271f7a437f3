// Cluster-environment detection (src/env) against hand-written expectations: one table per
// environment (Lightning 2.x's variables and defaults), SLURM's hostlist forms, the error cases,
// the detection order, Kubeflow only on request, LSF's rank file and host name; then the runtimes
// (Node's process.env, Deno.env with and without full permission, Bun.env), the requeue signal,
// and `plait env --json` under a fake SLURM job.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { EnvReport } from "../src/cli/env.ts";
import {
  type ClusterEnvironment,
  ClusterEnvironmentError,
  detectEnvironment,
  detectEnvironmentName,
  expandHostlist,
  firstHost,
  HostlistError,
} from "../src/env/index.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
type Env = Record<string, string>;

const env = (
  name: string,
  worldSize: number,
  globalRank: number,
  localRank: number,
  nodeRank: number,
  mainAddress: string,
  mainPort: number,
  createsProcessesExternally = true,
): ClusterEnvironment => ({
  name,
  worldSize,
  globalRank,
  localRank,
  nodeRank,
  mainAddress,
  mainPort,
  createsProcessesExternally,
});

describe("SLURM hostlists", () => {
  const cases: [string, string[]][] = [
    ["node1", ["node1"]],
    ["node1,node2", ["node1", "node2"]],
    ["node1 node2", ["node1", "node2"]],
    ["node1, node2\tnode3", ["node1", "node2", "node3"]],
    ["host[5-9]", ["host5", "host6", "host7", "host8", "host9"]],
    ["host[1,5-7]", ["host1", "host5", "host6", "host7"]],
    ["host[3]", ["host3"]],
    ["gpu[001-003]", ["gpu001", "gpu002", "gpu003"]],
    ["gpu[08-11]", ["gpu08", "gpu09", "gpu10", "gpu11"]],
    ["a[1-2],b[10-11],c", ["a1", "a2", "b10", "b11", "c"]],
    ["a[1-2] b[07,9]", ["a1", "a2", "b07", "b9"]],
    ["rack[1-2]-n[01-02]", ["rack1-n01", "rack1-n02", "rack2-n01", "rack2-n02"]],
    ["n[1-2].cluster.org", ["n1.cluster.org", "n2.cluster.org"]],
    ["10.0.0.[4-5]", ["10.0.0.4", "10.0.0.5"]],
    ["", []],
  ];
  it.each(cases)("%j expands to %j", (list, hosts) => {
    expect(expandHostlist(list)).toEqual(hosts);
    expect(firstHost(list)).toBe(hosts[0] ?? null);
  });

  it("the first host of a huge range without expanding it", () => {
    expect(firstHost("big[000000-999999],x")).toBe("big000000");
  });

  it.each([
    ["host[1-3", /'\[' without '\]'/],
    ["host1-3]", /'\]' without '\['/],
    ["host[[1]]", /nested/],
    ["host[a-b]", /bad range "a-b"/],
    ["host[]", /bad range ""/],
    ["host[5-2]", /5-2 ends before it starts/],
    ["host[1,,2]", /bad range ""/],
  ])("malformed %j is an error", (list, why) => {
    expect(() => expandHostlist(list)).toThrow(HostlistError);
    expect(() => firstHost(list)).toThrow(why);
  });
});

describe("each environment from its variables", () => {
  const slurm: Env = {
    SLURM_NTASKS: "8",
    SLURM_NTASKS_PER_NODE: "4",
    SLURM_PROCID: "5",
    SLURM_LOCALID: "1",
    SLURM_NODEID: "1",
    SLURM_NODELIST: "gpu[017-018]",
    SLURM_JOB_ID: "4823991",
    SLURM_JOB_NAME: "train",
  };
  const cases: [string, Env, ClusterEnvironment][] = [
    ["nothing set: the Lightning default, one process", {}, env("lightning", 1, 0, 0, 0, "127.0.0.1", 0, false)],
    [
      "Lightning's launcher children",
      { LOCAL_RANK: "1", NODE_RANK: "0", WORLD_SIZE: "2", MASTER_ADDR: "10.1.1.1", MASTER_PORT: "41000" },
      env("lightning", 2, 1, 1, 0, "10.1.1.1", 41000, true),
    ],
    [
      "Lightning: GROUP_RANK when NODE_RANK is unset, global rank from LOCAL_WORLD_SIZE",
      { LOCAL_RANK: "1", GROUP_RANK: "1", LOCAL_WORLD_SIZE: "2", WORLD_SIZE: "4" },
      env("lightning", 4, 3, 1, 1, "127.0.0.1", 0, true),
    ],
    [
      "Lightning: NODE_RANK wins over GROUP_RANK; RANK gives the global rank",
      { NODE_RANK: "1", GROUP_RANK: "0", RANK: "2", WORLD_SIZE: "4" },
      env("lightning", 4, 2, 0, 1, "127.0.0.1", 0, false),
    ],
    ["SLURM", slurm, env("slurm", 8, 5, 1, 1, "gpu017", 18991, true)],
    [
      "SLURM: MASTER_ADDR and MASTER_PORT win",
      { ...slurm, MASTER_ADDR: "login1", MASTER_PORT: "29500" },
      env("slurm", 8, 5, 1, 1, "login1", 29500, true),
    ],
    [
      "SLURM: one task, no nodelist, no job id",
      { SLURM_NTASKS: "1", SLURM_PROCID: "0", SLURM_LOCALID: "0", SLURM_NODEID: "0" },
      env("slurm", 1, 0, 0, 0, "127.0.0.1", 12910, true),
    ],
    [
      "SLURM: a short job id, a nodelist of several groups",
      { ...slurm, SLURM_JOB_ID: "77", SLURM_NODELIST: "a01 b[1-4],c" },
      env("slurm", 8, 5, 1, 1, "a01", 15077, true),
    ],
    [
      "SLURM: a job named bash is an interactive shell, not SLURM",
      { ...slurm, SLURM_JOB_NAME: "bash" },
      env("lightning", 1, 0, 0, 0, "127.0.0.1", 0, false),
    ],
    [
      "SLURM: nor is one named interactive",
      { ...slurm, SLURM_JOB_NAME: "interactive", LOCAL_RANK: "0" },
      env("lightning", 1, 0, 0, 0, "127.0.0.1", 0, true),
    ],
    [
      "TorchElastic (torchrun)",
      {
        TORCHELASTIC_RUN_ID: "none",
        RANK: "3",
        WORLD_SIZE: "4",
        LOCAL_RANK: "1",
        LOCAL_WORLD_SIZE: "2",
        GROUP_RANK: "1",
        MASTER_ADDR: "node7",
        MASTER_PORT: "29400",
      },
      env("torchelastic", 4, 3, 1, 1, "node7", 29400, true),
    ],
    [
      "TorchElastic: the defaults (group rank 0, 127.0.0.1:12910)",
      { TORCHELASTIC_RUN_ID: "abc", RANK: "0", WORLD_SIZE: "1", LOCAL_RANK: "0" },
      env("torchelastic", 1, 0, 0, 0, "127.0.0.1", 12910, true),
    ],
    [
      "Open MPI (mpirun)",
      {
        OMPI_COMM_WORLD_SIZE: "4",
        OMPI_COMM_WORLD_RANK: "3",
        OMPI_COMM_WORLD_LOCAL_RANK: "1",
        OMPI_COMM_WORLD_LOCAL_SIZE: "2",
      },
      env("mpi", 4, 3, 1, 1, "127.0.0.1", 0, true),
    ],
    [
      "MPICH / Intel MPI (Hydra)",
      { PMI_SIZE: "2", PMI_RANK: "1", MPI_LOCALRANKID: "1", MPI_LOCALNRANKS: "2", MASTER_PORT: "5000" },
      env("mpi", 2, 1, 1, 0, "127.0.0.1", 5000, true),
    ],
    [
      "MVAPICH: PMIX_RANK, MV2_COMM_WORLD_LOCAL_RANK; no local size, node 0",
      { PMI_SIZE: "3", PMIX_RANK: "2", MV2_COMM_WORLD_LOCAL_RANK: "2" },
      env("mpi", 3, 2, 2, 0, "127.0.0.1", 0, true),
    ],
    [
      "MPI with one process is not MPI (Lightning asks for size > 1)",
      { OMPI_COMM_WORLD_SIZE: "1", OMPI_COMM_WORLD_RANK: "0", OMPI_COMM_WORLD_LOCAL_RANK: "0" },
      env("lightning", 1, 0, 0, 0, "127.0.0.1", 0, false),
    ],
  ];
  it.each(cases)("%s", (_, vars, expected) => {
    expect(detectEnvironment(vars)).toEqual(expected);
  });

  it("Kubeflow only when asked: its variables alone detect the Lightning default", () => {
    const kf: Env = {
      KUBERNETES_PORT: "tcp://10.0.0.1:443",
      MASTER_ADDR: "job-master-0",
      MASTER_PORT: "23456",
      WORLD_SIZE: "3",
      RANK: "2",
    };
    expect(detectEnvironmentName(kf)).toBe("lightning");
    expect(detectEnvironment(kf).name).toBe("lightning");
    expect(detectEnvironment(kf, { use: "kubeflow" })).toEqual(
      env("kubeflow", 3, 2, 0, 2, "job-master-0", 23456, true),
    );
    const { MASTER_PORT: _, ...noPort } = kf;
    expect(() => detectEnvironment(noPort, { use: "kubeflow" })).toThrow(
      "plait: cluster environment kubeflow: MASTER_PORT is not set; expected the main pod's port",
    );
  });

  it("use names an environment to read instead of detecting one", () => {
    const both: Env = { SLURM_NTASKS: "1", SLURM_PROCID: "0", SLURM_LOCALID: "0", SLURM_NODEID: "0", LOCAL_RANK: "0" };
    expect(detectEnvironment(both).name).toBe("slurm");
    expect(detectEnvironment(both, { use: "lightning" }).name).toBe("lightning");
    expect(() => detectEnvironment({}, { use: "slurm" })).toThrow(/SLURM_NTASKS is not set/);
    expect(() => detectEnvironment({}, { use: "k8s" as never })).toThrow(/use must be one of lightning, slurm/);
    expect(() => detectEnvironment({}, { usee: "slurm" } as never)).toThrow(
      /unknown option usee; known: use, hostname/,
    );
  });

  it("use may be an environment object of your own, checked and returned", () => {
    const mine = env("my-scheduler", 4, 2, 0, 2, "head", 7000, true);
    expect(detectEnvironment({ SLURM_NTASKS: "x" }, { use: mine })).toEqual(mine);
    expect(() => detectEnvironment({}, { use: { ...mine, globalRank: 4 } })).toThrow(
      "globalRank must be less than worldSize = 4, got 4",
    );
    expect(() => detectEnvironment({}, { use: { ...mine, localRank: 1.5 } })).toThrow(
      /localRank must be an integer ≥ 0, got 1.5/,
    );
    expect(() => detectEnvironment({}, { use: { ...mine, name: "" } })).toThrow(/name must be a non-empty string/);
    expect(() => detectEnvironment({}, { use: { ...mine, mainAddress: "" } })).toThrow(
      /mainAddress must be a non-empty/,
    );
  });
});

describe("detection order: TorchElastic → SLURM → LSF → MPI → Lightning", () => {
  const te: Env = { TORCHELASTIC_RUN_ID: "r", RANK: "0", WORLD_SIZE: "1", LOCAL_RANK: "0" };
  const sl: Env = { SLURM_NTASKS: "1", SLURM_PROCID: "0", SLURM_LOCALID: "0", SLURM_NODEID: "0" };
  const lsf: Env = {
    LSB_JOBID: "1",
    LSB_DJOB_RANKFILE: "/nonexistent",
    JSM_NAMESPACE_LOCAL_RANK: "0",
    JSM_NAMESPACE_SIZE: "1",
  };
  const mpi: Env = { OMPI_COMM_WORLD_SIZE: "2", OMPI_COMM_WORLD_RANK: "0", OMPI_COMM_WORLD_LOCAL_RANK: "0" };
  it.each([
    ["torchelastic inside SLURM", { ...sl, ...te, ...lsf, ...mpi }, "torchelastic"],
    ["SLURM over LSF and MPI (srun --mpi=pmix)", { ...sl, ...lsf, ...mpi, PMIX_RANK: "0" }, "slurm"],
    ["LSF over MPI", { ...lsf, ...mpi }, "lsf"],
    ["MPI over the default", { ...mpi, LOCAL_RANK: "0" }, "mpi"],
    ["LSF needs all four of its variables", { ...lsf, JSM_NAMESPACE_SIZE: undefined as never }, "lightning"],
    ["the default", { LOCAL_RANK: "0" }, "lightning"],
  ])("%s", (_, vars, name) => {
    expect(detectEnvironmentName(vars as Env)).toBe(name);
  });
});

describe("LSF: the rank file and this host", () => {
  const dir = mkdtempSync(join(tmpdir(), "plait-lsf-"));
  const rankfile = join(dir, "rankfile");
  // jsrun's rank file: the launch node first, then one line per rank
  writeFileSync(rankfile, "batch1\nh1.cl.org\nh1.cl.org\nh2.cl.org\nh2.cl.org\nh3.cl.org\n");
  const lsf: Env = {
    LSB_JOBID: "123456",
    LSB_DJOB_RANKFILE: rankfile,
    JSM_NAMESPACE_SIZE: "5",
    JSM_NAMESPACE_RANK: "3",
    JSM_NAMESPACE_LOCAL_RANK: "1",
  };
  it.each([
    ["h1.cl.org", 0],
    ["h2.cl.org", 1],
    ["h3", 2], // a short host name matches the rank file's full one
  ])(
    "on %s the node rank is %i; main is the first compute host; port LSB_JOBID %% 1000 + 10000",
    (hostname, nodeRank) => {
      expect(detectEnvironment(lsf, { hostname })).toEqual(env("lsf", 5, 3, 1, nodeRank, "h1.cl.org", 10456, true));
    },
  );
  it("MASTER_PORT wins", () => {
    expect(detectEnvironment({ ...lsf, MASTER_PORT: "6000" }, { hostname: "h2.cl.org" }).mainPort).toBe(6000);
  });
  it("errors: a missing or empty rank file, a host not in it", () => {
    expect(() => detectEnvironment({ ...lsf, LSB_DJOB_RANKFILE: join(dir, "none") }, { hostname: "h1" })).toThrow(
      /cluster environment lsf: LSB_DJOB_RANKFILE names .*none, which cannot be read: ENOENT/,
    );
    const empty = join(dir, "empty");
    writeFileSync(empty, "\n");
    expect(() => detectEnvironment({ ...lsf, LSB_DJOB_RANKFILE: empty }, { hostname: "h1" })).toThrow(/is empty/);
    const launchOnly = join(dir, "launch");
    writeFileSync(launchOnly, "batch1\n");
    expect(() => detectEnvironment({ ...lsf, LSB_DJOB_RANKFILE: launchOnly }, { hostname: "h1" })).toThrow(
      /lists only the launch node/,
    );
    expect(() => detectEnvironment(lsf, { hostname: "elsewhere" })).toThrow(
      "this host, elsewhere, is not among the rank file's hosts (h1.cl.org, h2.cl.org, h3.cl.org)",
    );
    expect(() => detectEnvironment({ ...lsf, JSM_NAMESPACE_RANK: undefined as never }, { hostname: "h1" })).toThrow(
      /JSM_NAMESPACE_RANK is not set/,
    );
  });
});

describe("bad values are errors naming the variable, what was expected and what came", () => {
  const slurm: Env = {
    SLURM_NTASKS: "2",
    SLURM_NTASKS_PER_NODE: "2",
    SLURM_PROCID: "0",
    SLURM_LOCALID: "0",
    SLURM_NODEID: "0",
  };
  it.each<[string, Env, string | RegExp, string]>([
    [
      "SLURM_NTASKS > 1 without SLURM_NTASKS_PER_NODE (Lightning's hint)",
      { ...slurm, SLURM_NTASKS_PER_NODE: undefined as never, SLURM_NTASKS: "4" },
      "SLURM_NTASKS is 4 but SLURM_NTASKS_PER_NODE is not set: `--ntasks=4` alone is not supported. HINT: use `--ntasks-per-node=4` instead",
      "SLURM_NTASKS_PER_NODE",
    ],
    [
      "a rank that is not an integer",
      { ...slurm, SLURM_PROCID: "one" },
      'SLURM_PROCID must be this task\'s global rank (an integer ≥ 0), got "one"',
      "SLURM_PROCID",
    ],
    [
      "a negative rank",
      { ...slurm, SLURM_LOCALID: "-1" },
      'SLURM_LOCALID must be this task\'s rank on its node (an integer ≥ 0), got "-1"',
      "SLURM_LOCALID",
    ],
    [
      "a fractional size",
      { ...slurm, SLURM_NTASKS: "2.5" },
      'SLURM_NTASKS must be the number of tasks (an integer ≥ 1), got "2.5"',
      "SLURM_NTASKS",
    ],
    [
      "a world of 0",
      { ...slurm, SLURM_NTASKS: "0" },
      /SLURM_NTASKS must be the number of tasks \(an integer ≥ 1\), got "0"/,
      "SLURM_NTASKS",
    ],
    [
      "rank ≥ world size",
      { ...slurm, SLURM_PROCID: "2" },
      "globalRank (SLURM_PROCID) must be less than worldSize (SLURM_NTASKS) = 2, got 2",
      "SLURM_PROCID",
    ],
    [
      "a missing rank",
      { ...slurm, SLURM_NODEID: undefined as never },
      "SLURM_NODEID is not set; expected this node's rank (an integer ≥ 0)",
      "SLURM_NODEID",
    ],
    [
      "a malformed nodelist",
      { ...slurm, SLURM_NODELIST: "gpu[1-" },
      "malformed SLURM hostlist \"gpu[1-\": '[' without ']'",
      "SLURM_NODELIST",
    ],
    [
      "a job id that is not a number",
      { ...slurm, SLURM_JOB_ID: "12_3" },
      'SLURM_JOB_ID must be the job id (an integer ≥ 0), got "12_3"',
      "SLURM_JOB_ID",
    ],
    [
      "a port out of range",
      { ...slurm, MASTER_PORT: "70000" },
      'MASTER_PORT must be a TCP port (1 to 65535), got "70000"',
      "MASTER_PORT",
    ],
    [
      "an empty MASTER_ADDR",
      { ...slurm, MASTER_ADDR: " " },
      "MASTER_ADDR must be a host name or address, got an empty string",
      "MASTER_ADDR",
    ],
    [
      "TorchElastic without RANK",
      { TORCHELASTIC_RUN_ID: "x", WORLD_SIZE: "2", LOCAL_RANK: "0" },
      "RANK is not set; expected this process's global rank",
      "RANK",
    ],
    [
      "TorchElastic: local rank ≥ world size",
      { TORCHELASTIC_RUN_ID: "x", WORLD_SIZE: "2", RANK: "1", LOCAL_RANK: "2" },
      "localRank (LOCAL_RANK) must be less than worldSize (WORLD_SIZE) = 2, got 2",
      "LOCAL_RANK",
    ],
    [
      "MPI without a local rank",
      { OMPI_COMM_WORLD_SIZE: "2", OMPI_COMM_WORLD_RANK: "1" },
      /none of OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID, .*MV2_COMM_WORLD_LOCAL_RANK.* is set/,
      "OMPI_COMM_WORLD_LOCAL_RANK",
    ],
    [
      "MPI with a bad size",
      { PMI_SIZE: "two", PMI_RANK: "0", MPI_LOCALRANKID: "0" },
      'PMI_SIZE must be the number of MPI processes (an integer ≥ 1), got "two"',
      "PMI_SIZE",
    ],
    [
      "Lightning: a bad LOCAL_RANK",
      { LOCAL_RANK: "x" },
      'LOCAL_RANK must be this process\'s rank on its node (an integer ≥ 0), got "x"',
      "LOCAL_RANK",
    ],
    [
      "Lightning: node rank > 0 with no way to the global rank",
      { LOCAL_RANK: "0", NODE_RANK: "1", WORLD_SIZE: "4" },
      "node rank 1 with neither RANK nor LOCAL_WORLD_SIZE set",
      "RANK",
    ],
    [
      "Lightning: LOCAL_RANK ≥ WORLD_SIZE",
      { LOCAL_RANK: "2", WORLD_SIZE: "2" },
      "localRank (LOCAL_RANK) must be less than worldSize (WORLD_SIZE) = 2, got 2",
      "LOCAL_RANK",
    ],
  ])("%s", (_, vars, message, variable) => {
    let err: unknown;
    try {
      detectEnvironment(Object.fromEntries(Object.entries(vars).filter(([, v]) => v !== undefined)));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ClusterEnvironmentError);
    if (typeof message === "string") expect((err as Error).message).toContain(message);
    else expect((err as Error).message).toMatch(message);
    expect((err as ClusterEnvironmentError).variable).toBe(variable);
    expect((err as Error).message).toMatch(/^plait: cluster environment \w+: /);
  });
});

describe("runtimes, the requeue signal and plait env", () => {
  const code = (src: string) =>
    `import { detectEnvironment, onRequeueSignal } from ${JSON.stringify(src)};\n` +
    "const e = detectEnvironment();\n" +
    "let n = 0; const off = onRequeueSignal((s) => { n++; console.log(JSON.stringify({ e, s, n })); off(); });\n" +
    "process.kill(process.pid, 'SIGUSR1');\n" +
    "setTimeout(() => { if (n !== 1) { console.error('handler ran', n, 'times'); process.exit(3); } }, 500);\n";
  const vars: Env = {
    SLURM_NTASKS: "2",
    SLURM_NTASKS_PER_NODE: "2",
    SLURM_PROCID: "1",
    SLURM_LOCALID: "1",
    SLURM_NODEID: "0",
    SLURM_NODELIST: "c[3-4]",
    SLURM_JOB_ID: "900123",
    SLURM_JOB_NAME: "job",
  };
  const expected = env("slurm", 2, 1, 1, 0, "c3", 15123, true);
  const run = (cmd: string, args: string[], extra: Env = vars) => {
    const r = spawnSync(cmd, args, { encoding: "utf8", cwd: ROOT, env: { ...process.env, ...extra }, timeout: 30_000 });
    if (r.status !== 0) throw new Error(`${cmd} exited ${r.status}: ${r.stderr}`);
    const out = r.stdout.trim();
    return JSON.parse(out.startsWith("{\n") ? out : out.split("\n").at(-1)!);
  };

  it("Node: process.env, and SIGUSR1 calls the handler once (then uninstalled)", () => {
    const out = run(process.execPath, ["--input-type=module", "-e", code(`${ROOT}dist/src/env/index.js`)]);
    expect(out).toEqual({ e: expected, s: "SIGUSR1", n: 1 });
  });

  it("Deno: Deno.env with --allow-env, and with only some variables allowed", () => {
    const deno = `${ROOT}node_modules/.bin/deno`;
    const file = join(mkdtempSync(join(tmpdir(), "plait-deno-")), "main.ts");
    writeFileSync(
      file,
      code(`${ROOT}src/env/index.ts`)
        .replace("process.kill(process.pid, 'SIGUSR1')", "Deno.kill(Deno.pid, 'SIGUSR1')")
        .replace("process.exit(3)", "Deno.exit(3)"),
    );
    expect(run(deno, ["run", "--allow-read", "--allow-env", "--allow-sys", file])).toEqual({
      e: expected,
      s: "SIGUSR1",
      n: 1,
    });
    // without full --allow-env, the variables allowed one by one are read and the rest are unset
    const some = "SLURM_NTASKS,SLURM_NTASKS_PER_NODE,SLURM_PROCID,SLURM_LOCALID,SLURM_NODEID,SLURM_JOB_ID";
    expect(run(deno, ["run", "--allow-read", `--allow-env=${some}`, "--allow-sys", file]).e).toEqual({
      ...expected,
      mainAddress: "127.0.0.1",
    });
  });

  it("Bun: Bun.env", () => {
    const bun = `${ROOT}node_modules/.bin/bun`;
    const file = join(mkdtempSync(join(tmpdir(), "plait-bun-")), "main.ts");
    writeFileSync(file, code(`${ROOT}src/env/index.ts`));
    expect(run(bun, [file])).toEqual({ e: expected, s: "SIGUSR1", n: 1 });
  });

  it("plait env --json under a fake SLURM job: the cluster field", () => {
    const r = run(process.execPath, [`${ROOT}dist/src/cli/main.js`, "env", "--json"], {
      ...vars,
      PLAIT_BLAS: "off",
    }) as never;
    const text = spawnSync(process.execPath, [`${ROOT}dist/src/cli/main.js`, "env", "--json"], {
      encoding: "utf8",
      env: { ...process.env, ...vars, SLURM_PROCID: "7" },
    }).stdout;
    const report = r as EnvReport;
    expect(report.cluster).toEqual({
      found: true,
      usable: true,
      reason: "slurm: rank 1 of 2 (local rank 1, node 0), main c3:15123, processes started by a launcher",
      name: "slurm",
      environment: expected,
    });
    expect((JSON.parse(text) as EnvReport).cluster).toEqual({
      found: true,
      usable: false,
      reason:
        "plait: cluster environment slurm: globalRank (SLURM_PROCID) must be less than worldSize (SLURM_NTASKS) = 2, got 7",
      name: "slurm",
      environment: null,
    });
  });
});
