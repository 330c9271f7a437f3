#!/usr/bin/env node
// The `plait` command: `plait demo [flags]` trains the MNIST demo; `plait env [--json]` reports what
// this machine and runtime give plait (WASM features, threads, BLAS, MPI, CUDA, NCCL).
import { demo } from "./demo.ts";
import { env } from "./env.ts";

const COMMANDS: Record<string, (argv: readonly string[]) => Promise<void>> = { demo, env };

const [name, ...rest] = process.argv.slice(2);
const command = name === undefined ? undefined : COMMANDS[name];
if (!command) {
  process.stderr.write(`usage: plait <command> [flags]\ncommands: ${Object.keys(COMMANDS).join(", ")}\n`);
  process.exit(name === undefined ? 0 : 2);
}
try {
  await command(rest);
  process.exit(0);
} catch (e) {
  process.stderr.write(`plait ${name}: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
