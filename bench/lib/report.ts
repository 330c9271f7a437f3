import { mkdirSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import type { Measurement } from "./measure.ts";

/** A ratio the issue sets a target for: value of `impl` over value of `peer` on `case`. */
export interface RatioCheck {
  name: string;
  ratio: number;
  target: number;
  /** "higher" when bigger is better (throughput), "lower" for times. */
  better?: "higher" | "lower";
}

// `npm run bench` runs from the package root; the compiled suites live under build/, so the
// results folder is found from the working directory, not from this file.
const RESULTS = new URL("bench/results/", pathToFileURL(`${process.cwd()}/`));

/** Writes bench/results/<suite>.json and <suite>.svg, and prints a table plus the ratio checks. */
export function report(suite: string, rows: Measurement[], checks: RatioCheck[], meta: Record<string, unknown> = {}) {
  mkdirSync(RESULTS, { recursive: true });
  const machine = { node: process.version, platform: process.platform, arch: process.arch };
  writeFileSync(
    new URL(`${suite}.json`, RESULTS),
    `${JSON.stringify({ suite, date: new Date().toISOString(), machine, meta, rows, checks }, null, 2)}\n`,
  );
  writeFileSync(new URL(`${suite}.svg`, RESULTS), barChart(suite, rows));
  console.log(`\n## ${suite}`);
  console.table(rows.map((r) => ({ case: r.case, impl: r.impl, value: Number(r.value.toPrecision(4)), unit: r.unit })));
  for (const c of checks) {
    const ok = (c.better ?? "higher") === "higher" ? c.ratio >= c.target : c.ratio <= c.target;
    console.log(
      `${ok ? "met " : "MISS"}  ${c.name}: ${c.ratio.toFixed(2)}× (target ${c.better === "lower" ? "≤" : "≥"} ${c.target}×)`,
    );
  }
  console.log(`wrote bench/results/${suite}.json and .svg`);
}

/** Grouped horizontal bars: one group per case, one bar per implementation, one chart per unit. */
export function barChart(title: string, rows: Measurement[]): string {
  const impls = [...new Set(rows.map((r) => r.impl))];
  const cases = [...new Set(rows.map((r) => `${r.case} (${r.unit})`))];
  const colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"];
  const bar = 14;
  const groupH = impls.length * bar + 12;
  const left = 230;
  const width = 760;
  const height = 40 + cases.length * groupH + 20 + impls.length * 16;
  const parts: string[] = [];
  parts.push(`<text x="10" y="22" font-size="15" font-weight="bold">${esc(title)}</text>`);
  cases.forEach((c, ci) => {
    const group = rows.filter((r) => `${r.case} (${r.unit})` === c);
    const max = Math.max(...group.map((r) => r.value), 1e-12);
    const y0 = 40 + ci * groupH;
    parts.push(`<text x="${left - 6}" y="${y0 + groupH / 2}" font-size="11" text-anchor="end">${esc(c)}</text>`);
    for (const r of group) {
      const i = impls.indexOf(r.impl);
      const w = ((width - left - 80) * r.value) / max;
      const y = y0 + i * bar;
      parts.push(
        `<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${bar - 2}" fill="${colors[i % colors.length]}"/>`,
      );
      parts.push(`<text x="${left + w + 4}" y="${y + bar - 4}" font-size="10">${r.value.toPrecision(3)}</text>`);
    }
  });
  impls.forEach((impl, i) => {
    const y = 40 + cases.length * groupH + 10 + i * 16;
    parts.push(`<rect x="${left}" y="${y}" width="12" height="12" fill="${colors[i % colors.length]}"/>`);
    parts.push(`<text x="${left + 18}" y="${y + 10}" font-size="11">${esc(impl)}</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>${parts.join("")}</svg>\n`;
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
