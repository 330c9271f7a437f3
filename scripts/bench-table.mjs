// Prints the ratio checks of bench/results/*.json as a markdown table, for the README.
import { readdirSync, readFileSync } from "node:fs";

const dir = new URL("../bench/results/", import.meta.url);
const order = ["gemm", "blas", "reduce", "casts", "optim", "train", "precision", "allreduce", "train-scaling"];
const files = readdirSync(dir).filter((f) => f.endsWith(".json"));
const suites = files.map((f) => JSON.parse(readFileSync(new URL(f, dir), "utf8")));
suites.sort((a, b) => order.indexOf(a.suite) - order.indexOf(b.suite));
console.log("| suite | ratio | measured | target | |");
console.log("|---|---|---|---|---|");
for (const s of suites) {
  for (const c of s.checks) {
    const lower = c.better === "lower";
    const ok = lower ? c.ratio <= c.target : c.ratio >= c.target;
    const target = `${lower ? "≤" : "≥"} ${Number(c.target.toPrecision(3))}`;
    console.log(`| ${s.suite} | ${c.name} | ${c.ratio.toFixed(2)} | ${target} | ${ok ? "met" : "**missed**"} |`);
  }
}
