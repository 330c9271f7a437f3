// The tfjs peer every bench measures against: tfjs 4.22 on its WASM backend (XNNPACK), with the
// backend's .wasm files served from its own package folder. `full` loads @tensorflow/tfjs
// (layers, optimizers); otherwise only tfjs-core (ops), which is all the GEMM bench needs.
import { createRequire } from "node:module";
import { dirname } from "node:path";

export async function tfjsWasm(): Promise<typeof import("@tensorflow/tfjs")>;
export async function tfjsWasm(core: "core"): Promise<typeof import("@tensorflow/tfjs-core")>;
export async function tfjsWasm(
  core?: "core",
): Promise<typeof import("@tensorflow/tfjs") | typeof import("@tensorflow/tfjs-core")> {
  const tf = core ? await import("@tensorflow/tfjs-core") : await import("@tensorflow/tfjs");
  const wasm = await import("@tensorflow/tfjs-backend-wasm");
  wasm.setWasmPaths(`${dirname(createRequire(import.meta.url).resolve("@tensorflow/tfjs-backend-wasm"))}/`);
  await tf.setBackend("wasm");
  return tf;
}
