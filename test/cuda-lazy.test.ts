// Importing plait, with its CUDA layer, loads no native library: not koffi, not libcudart, not
// libcuda, not cuBLAS. Checked in this (fresh) test process by reading /proc/self/maps after the
// import and after a device string is parsed; the first move to a device is what opens them.
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";

const mapped = () => {
  const maps = readFileSync("/proc/self/maps", "utf8");
  return ["koffi", "libcudart", "libcuda.so", "libcublas"].filter((lib) => maps.includes(lib));
};

it.skipIf(process.platform !== "linux")("importing plait and its cuda namespace maps no native library", async () => {
  const plait = await import("../src/index.ts");
  expect(typeof plait.cuda.deviceCount).toBe("function");
  const t = plait.tensor([1, 2]);
  expect(() => t.to("gpu")).toThrow(/device must be/);
  expect(t.device).toBe("cpu");
  expect(plait.cuda.gemmArgs(1, 1, 1, false, false).ldc).toBe(1);
  expect(mapped()).toEqual([]);
  // and the check sees a library once one is opened: the first move to a device loads koffi
  try {
    t.to("cuda:0").dispose();
  } catch {}
  expect(mapped()).toContain("koffi");
  t.dispose();
});
