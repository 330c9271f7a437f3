import { spawn } from "../src/launch/index.ts";

// Shared by the strategy tests: each rank runs test/fixtures/strategy-train.mjs in a spawned
// worker thread (which loads plait from dist/: `npx tsc -p tsconfig.build.json` first).

const FIXTURE = new URL("./fixtures/strategy-train.mjs", import.meta.url);

/** What each rank of the fixture returns: final params (exact values), per-step outputs, collectives made. */
export interface RankResult {
  params: number[][];
  outs: { loss: number; skip: boolean; accumulating: boolean }[];
  counts: Record<string, number>;
}

export const runRanks = (devices: number, args: Record<string, unknown>) =>
  spawn<RankResult>(FIXTURE, "run", { devices, args, timeoutMs: 60_000 });

/** The largest |a − b| over all params (∞ when the shapes differ). */
export function maxDiff(a: number[][], b: number[][]): number {
  if (a.length !== b.length || a.some((leaf, i) => leaf.length !== b[i].length)) return Number.POSITIVE_INFINITY;
  let d = 0;
  for (const [i, leaf] of a.entries()) for (const [j, v] of leaf.entries()) d = Math.max(d, Math.abs(v - b[i][j]));
  return d;
}

/** Whether every value has the same bits (NaN payloads aside, as JS numbers). */
export const identical = (a: number[][], b: number[][]) =>
  a.length === b.length &&
  a.every((leaf, i) => leaf.length === b[i].length && leaf.every((v, j) => Object.is(v, b[i][j])));
