// @ts-check
// Entry of every worker that launch() and spawn() start. It loads plait the way the user's code
// does, by package name (dist/ on Node, src/ on Deno and Bun), so that the rank and the user's
// module share one copy of the library: one runtime, one communicator. Plain JavaScript, because
// a worker on Node 20 cannot load TypeScript.
import { parentPort, workerData } from "node:worker_threads";

let index;
try {
  index = import.meta.resolve("plait");
} catch {
  index = new URL("../index.js", import.meta.url).href; // plait not resolvable by name: use this copy
}
const rank = new URL(index.endsWith(".ts") ? "./launch/rank.ts" : "./launch/rank.js", index);
const { runRank } = await import(rank.href);
await runRank(workerData, parentPort);
