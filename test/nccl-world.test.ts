// ncclWorld(): the NcclComm of a rank whose devices are CUDA, without a GPU: the stand-in NCCL and
// CUDA runtime of test/fixtures/fake-nccl.c (built here with cc; every rank is alone, so this
// checks how the rank, world and device are chosen and how the unique id travels, not NCCL's
// data movement). A launcher's comm hands the id out; a torchrun-style environment (a world of one
// here, WORLD_SIZE > 1 there) meets at the TCP store on MASTER_ADDR:MASTER_PORT.
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { openNative } from "../ffi/native.ts";
import { localComm } from "../src/comm/local.ts";
import { ncclWorld } from "../src/comm/ncclWorld.ts";

const SOURCE = fileURLToPath(new URL("./fixtures/fake-nccl.c", import.meta.url));
const cc = (() => {
  for (const c of ["cc", "gcc", "clang"]) {
    try {
      execFileSync(c, ["--version"], { stdio: "ignore" });
      return c;
    } catch {}
  }
  return undefined;
})();

let last: () => string = () => "";

beforeAll(() => {
  if (!cc) return;
  const lib = join(mkdtempSync(join(tmpdir(), "plait-fake-nccl-")), "libfake.so");
  execFileSync(cc, ["-shared", "-fPIC", "-O1", "-o", lib, SOURCE]);
  process.env.PLAIT_NCCL = lib;
  process.env.PLAIT_CUDART = lib;
  const f = openNative(lib).func("const char *fake_last()");
  last = () => String(f());
});

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

describe.skipIf(!cc)("ncclWorld on a stand-in NCCL (no GPU)", () => {
  it("a launcher's world of one: the id over its comm, the device given", async () => {
    const comm = await ncclWorld({ rank: 0, worldSize: 1, comm: localComm() }, { device: 0, timeoutMs: 5000 });
    expect(comm).toMatchObject({ rank: 0, worldSize: 1, device: 0 });
    await comm.barrier();
    expect(last()).toContain("ncclAllReduce"); // the barrier reached the (stand-in) NCCL
    await comm.destroy();
  });

  it("torchrun's variables: two ranks meet at MASTER_ADDR:MASTER_PORT, each on cuda:LOCAL_RANK", async () => {
    const port = await freePort();
    const env = (rank: number) => ({
      WORLD_SIZE: "2",
      RANK: String(rank),
      LOCAL_RANK: String(rank),
      MASTER_ADDR: "127.0.0.1",
      MASTER_PORT: String(port),
    });
    const alone = { rank: 0, worldSize: 1, comm: localComm() };
    const [a, b] = await Promise.all([
      ncclWorld(alone, { env: env(0), timeoutMs: 10_000 }),
      ncclWorld(alone, { env: env(1), timeoutMs: 10_000 }),
    ]);
    expect([a.rank, a.worldSize, a.device]).toEqual([0, 2, 0]);
    expect([b.rank, b.worldSize, b.device]).toEqual([1, 2, 1]);
    await Promise.all([b.destroy(), a.destroy()]);
  }, 30_000);

  it("a torchrun variable missing is named", async () => {
    const alone = { rank: 0, worldSize: 1, comm: localComm() };
    await expect(
      ncclWorld(alone, { env: { WORLD_SIZE: "2", RANK: "0", MASTER_PORT: "1" }, device: 0 }),
    ).rejects.toThrow(/MASTER_ADDR is not set; the TCP rendezvous needs MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE/);
  });
});
