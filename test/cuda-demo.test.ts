// `plait demo --device cuda:0`. Here (no usable CUDA device) the command must fail at once with
// the CUDA error `plait env` reports for cudaGetDeviceCount (35, cudaErrorInsufficientDriver,
// with libcudart 13 and no driver), before it loads any data. The training loop itself runs on
// the fake device of test/cuda-fake.ts (host memory, JS kernels): what that checks is plait's
// wiring of the demo (device params, uploads, the step, evaluation), not the GPU kernels, which
// test/gpu/run.sh runs on a GPU (with this demo's samples/s beside the CPU run's).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { CudaError } from "../ffi/cuda/errors.ts";
import { deviceCount } from "../ffi/cuda/runtime.ts";
import { parseFlags } from "../src/cli/args.ts";
import { DEMO_FLAGS, withModelDefaults } from "../src/cli/demo-common.ts";
import { demoCuda } from "../src/cli/demo-cuda.ts";
import { useFakeDevice } from "./cuda-fake.ts";

const main = new URL("../dist/src/cli/main.js", import.meta.url).pathname;

/** What cudaGetDeviceCount says on this machine: its error (as `plait env` reports it), or the count. */
function cudaHere(): { error?: CudaError; count?: number; other?: string } {
  try {
    return { count: deviceCount() };
  } catch (e) {
    return e instanceof CudaError ? { error: e } : { other: String(e) };
  }
}
const here = cudaHere();

describe("plait demo --device cuda:0", () => {
  it.skipIf(here.error === undefined)(
    `fails fast with cudaGetDeviceCount's error (${here.error?.code ?? "skipped: CUDA reports a device here"})`,
    () => {
      const t0 = performance.now();
      let stderr = "";
      let status = 0;
      try {
        execFileSync(process.execPath, [main, "demo", "--device", "cuda:0", "--json"], {
          encoding: "utf8",
          stdio: "pipe",
        });
      } catch (e) {
        const err = e as { status: number; stderr: string };
        status = err.status;
        stderr = err.stderr;
      }
      expect(status).toBe(1);
      expect(stderr).toContain("plait demo: --device cuda:0:");
      expect(stderr).toContain(`cudaGetDeviceCount returned ${here.error!.code}`);
      if (here.error!.code === 35) expect(stderr).toContain("cudaErrorInsufficientDriver");
      expect(performance.now() - t0).toBeLessThan(15_000); // no data loaded, no epoch run
    },
    30_000,
  );

  it("refuses what the device path does not run, naming the flag", async () => {
    const flags = (argv: string[]) => withModelDefaults(parseFlags(argv, DEMO_FLAGS));
    const skip = { skipCheck: true };
    await expect(demoCuda(flags(["--device", "cuda:0", "--model", "cnn"]), skip)).rejects.toThrow(
      /--device cuda:0 trains --model mlp/,
    );
    await expect(demoCuda(flags(["--device", "cuda:0", "--devices", "2"]), skip)).rejects.toThrow(/runs one rank/);
    await expect(demoCuda(flags(["--device", "cuda:0", "--precision", "16-true"]), skip)).rejects.toThrow(
      /--precision must be one of 32-true, 16-mixed, bf16-mixed; got 16-true/,
    );
  });
});

describe("the demo's loop on the fake cuda:0 (plait's wiring)", () => {
  const fake = useFakeDevice();
  const out = mkdtempSync(join(tmpdir(), "plait-cuda-demo-"));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it.each(["32-true", "16-mixed"])(
    "%s: 2 epochs on 1024 digits learn (test accuracy well above chance), params stay on the device",
    async (precision) => {
      const write = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
      try {
        const flags = withModelDefaults(
          parseFlags(
            ["--device", "cuda:0", "--epochs", "2", "--hidden", "32", "--precision", precision, "--json", "--out", out],
            DEMO_FLAGS,
          ),
        );
        const before = fake.blocks.size;
        await demoCuda(flags, { train: 1024, test: 500, skipCheck: true });
        const summary = JSON.parse(String(write.mock.calls.at(-1)?.[0]));
        expect(summary).toMatchObject({ model: "mlp", device: "cuda:0", precision, epochs: 2 });
        expect(summary.testAccuracy).toBeGreaterThan(0.6);
        expect(summary.finalLoss).toBeLessThan(1.5);
        expect(fake.kernelCalls).toContain("sgd");
        expect(fake.blocks.size).toBe(before); // nothing left on the device once the demo returns
      } finally {
        write.mockRestore();
      }
    },
    120_000,
  );
});
