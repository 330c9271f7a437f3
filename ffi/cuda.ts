// CUDA: the runtime (libcudart), the driver (libcuda, installed with the NVIDIA driver, not the
// toolkit) and cuBLAS. Where they are and what they say; the GPU backend comes with the GPU issue.
import { LibraryError, type LibrarySpec, libraryMode, openLibrary } from "./find.ts";
import { message, type NativeLibrary } from "./native.ts";
import { absent, type Probe, probeLibrary } from "./probe.ts";

const NVIDIA_INSTALL = "from NVIDIA's CUDA repository, or the pip wheel";

export const CUDART_SPEC: LibrarySpec = {
  name: "CUDA runtime",
  env: "PLAIT_CUDART",
  sonames: ["libcudart.so.13", "libcudart.so.12"],
  pattern: /^libcudart\.so\.\d+$/,
  cuda: true,
  wheels: ["cu13", "cuda_runtime"], // CUDA 13 wheels put cudart and cuBLAS in nvidia/cu13/lib
  install: `apt-get install cuda-cudart-13-0 (${NVIDIA_INSTALL} nvidia-cuda-runtime-cu12), or PLAIT_CUDART=/path/to/libcudart.so`,
};

export const CUDA_DRIVER_SPEC: LibrarySpec = {
  name: "CUDA driver",
  env: "PLAIT_CUDA_DRIVER",
  sonames: ["libcuda.so.1"],
  cuda: true,
  install:
    "the NVIDIA driver (libcuda.so.1 comes with it, e.g. apt-get install libcuda1 or nvidia-driver), on a machine with an NVIDIA GPU",
};

export const CUBLAS_SPEC: LibrarySpec = {
  name: "cuBLAS",
  env: "PLAIT_CUBLAS",
  sonames: ["libcublas.so.13", "libcublas.so.12"],
  pattern: /^libcublas\.so\.\d+$/,
  cuda: true,
  wheels: ["cu13", "cublas"],
  install: `apt-get install libcublas-13-0 (${NVIDIA_INSTALL} nvidia-cublas-cu12), or PLAIT_CUBLAS=/path/to/libcublas.so`,
};

export interface CudaProbe extends Probe {
  /** cudaRuntimeGetVersion, e.g. "13.0". */
  runtimeVersion?: string;
  /** The driver: found, its version (cudaDriverGetVersion; null without one), or why none. */
  driver?: Probe & { version: string | null };
  /** cudaGetDeviceCount: the devices, or the error it returned. */
  devices?: number;
  /** Each device's compute capability, multiprocessor count and memory, when there are devices. */
  deviceList?: { index: number; computeCapability: string; multiProcessors: number; totalBytes: number }[];
  deviceError?: { code: number; name: string; message: string } | null;
  cublas?: Probe & { version?: string };
}

const version = (v: number) => `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;

/**
 * Finds the CUDA runtime and asks it for its version, the driver's version and the device
 * count, and where the driver library is (or why there is none); then cuBLAS. Usable means at
 * least one device answers.
 */
export function probeCuda(): CudaProbe {
  const rt = probeLibrary(CUDART_SPEC, ["cudaGetDeviceCount", "cudaRuntimeGetVersion"], (lib) => {
    const out = [0];
    const call = (proto: string) => {
      const rc = lib.func(proto)(out);
      return { rc, value: out[0] };
    };
    const runtime = call("int cudaRuntimeGetVersion(_Out_ int *version)");
    const driverVersion = call("int cudaDriverGetVersion(_Out_ int *version)");
    const count = call("int cudaGetDeviceCount(_Out_ int *count)");
    const errorName = lib.func("const char *cudaGetErrorName(int error)");
    const errorString = lib.func("const char *cudaGetErrorString(int error)");
    const deviceError =
      count.rc === 0
        ? null
        : { code: count.rc, name: String(errorName(count.rc)), message: String(errorString(count.rc)) };
    const devices = count.rc === 0 ? count.value : 0;
    const deviceList = devices > 0 ? listDevices(lib, devices) : undefined;
    const driver = probeDriver(driverVersion.rc === 0 ? driverVersion.value : 0);
    const usable = devices > 0;
    let reason: string | null = null;
    if (!usable) {
      reason = deviceError
        ? `cudaGetDeviceCount returned ${deviceError.code} (${deviceError.name}: ${deviceError.message})`
        : "cudaGetDeviceCount found no device";
      if (!driver.usable) reason += `; no CUDA driver: ${driver.reason}`;
    }
    return { runtimeVersion: version(runtime.value), driver, devices, deviceList, deviceError, usable, reason };
  });
  return { ...rt, cublas: probeCublas() };
}

/**
 * Attributes by cudaDeviceGetAttribute (ids 75, 76, 16: checked against driver_types.h in
 * test/cuda-abi.test.ts through ffi/cuda/api.ts) and memory by cudaMemGetInfo; an error leaves a
 * device out rather than failing the probe.
 */
function listDevices(lib: NativeLibrary, count: number): NonNullable<CudaProbe["deviceList"]> {
  const attr = lib.func("int cudaDeviceGetAttribute(_Out_ int *value, int attr, int device)");
  const setDevice = lib.func("int cudaSetDevice(int device)");
  const memInfo = lib.func("int cudaMemGetInfo(_Out_ size_t *free, _Out_ size_t *total)");
  const getDevice = lib.func("int cudaGetDevice(_Out_ int *device)");
  const current = [0];
  const restore = getDevice(current) === 0;
  const out: NonNullable<CudaProbe["deviceList"]> = [];
  for (let index = 0; index < count; index++) {
    const get = (id: number) => {
      const v = [0];
      if (attr(v, id, index) !== 0) throw new Error(`cudaDeviceGetAttribute(${id}, ${index}) failed`);
      return v[0];
    };
    try {
      const free = [0];
      const total = [0];
      const totalBytes = setDevice(index) === 0 && memInfo(free, total) === 0 ? Number(total[0]) : 0;
      out.push({ index, computeCapability: `${get(75)}.${get(76)}`, multiProcessors: get(16), totalBytes });
    } catch {}
  }
  if (restore) setDevice(current[0]); // the probe leaves the thread's current device as it was
  return out;
}

/** libcuda.so.1: where it is, and the version cudaDriverGetVersion gave (0 means none). */
function probeDriver(driverVersion: number): Probe & { version: string | null } {
  try {
    const found = openLibrary(CUDA_DRIVER_SPEC, libraryMode(CUDA_DRIVER_SPEC), ["cuDriverGetVersion"]);
    return {
      found: true,
      usable: driverVersion > 0,
      reason: driverVersion > 0 ? null : "cudaDriverGetVersion reports no driver",
      path: found.path,
      via: found.via,
      tried: found.tried,
      version: driverVersion > 0 ? version(driverVersion) : null,
    };
  } catch (e) {
    if (!(e instanceof LibraryError)) return { ...absent(message(e)), version: null };
    const reason =
      e.kind === "missing"
        ? "libcuda.so.1 not found: the NVIDIA driver is not installed, or this machine has no NVIDIA GPU"
        : e.reason;
    const probe = absent(reason, e.tried, e.kind === "unusable");
    return { ...probe, searched: e.searched, install: e.install, version: null };
  }
}

function probeCublas(): Probe & { version?: string } {
  return probeLibrary(CUBLAS_SPEC, ["cublasCreate_v2"], (lib) => {
    const get = lib.func("int cublasGetProperty(int type, _Out_ int *value)");
    const [major, minor, patch] = [0, 1, 2].map((type) => {
      const out = [0];
      const rc = get(type, out);
      if (rc !== 0) throw new Error(`cublasGetProperty(${type}) returned ${rc}`);
      return out[0];
    });
    return { version: `${major}.${minor}.${patch}` };
  });
}
