import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../checkpoint/files.ts";
import { checkOptions } from "../core/options.ts";
import type { Schedule } from "../optim/types.ts";
import type { Callback } from "./callback.ts";
import { lineChart } from "./chart.ts";

const checkDir = (op: string, dir: unknown): string => {
  if (typeof dir !== "string" || dir === "") {
    throw new TypeError(`plait: ${op}: option dir must be a folder path, got ${JSON.stringify(dir)}`);
  }
  return dir;
};

export interface LrMonitorOptions {
  /** The optimizer's schedule, when its lr is one (the optimizer's state records only "schedule"). */
  schedule?: Schedule;
  /** The metric's name (default "lr"). */
  name?: string;
}

/**
 * Lightning's LearningRateMonitor (logging_interval "epoch") as a value: logs the learning rate
 * of each epoch's first update, read from the optimizer's state (`opt.hyper.lr`) or, for a
 * schedule, `schedule(step)` at the optimizer's step count when the epoch began.
 */
export function lrMonitor(options?: LrMonitorOptions): Callback<null> {
  const op = "lrMonitor";
  const opts = checkOptions(op, options, ["schedule", "name"]);
  if (opts.schedule !== undefined && typeof opts.schedule !== "function") {
    throw new TypeError(`plait: ${op}: option schedule must be a function of the step count`);
  }
  const name = opts.name ?? "lr";
  return {
    name: op,
    init: () => null,
    log(_s, e) {
      const lr = e.state.opt.hyper.lr;
      if (typeof lr === "number") return e.log(name, lr);
      if (!opts.schedule) {
        throw new Error(
          `plait: ${op}: the optimizer's lr is ${JSON.stringify(lr)}; pass the same function as lrMonitor({ schedule })`,
        );
      }
      e.log(name, opts.schedule(e.firstStep));
    },
  };
}

export interface CsvLoggerOptions {
  dir: string;
  /** Default "metrics.csv". */
  filename?: string;
}

/** Every epoch's metrics so far, and the columns in the order they first appeared. */
export interface TableState {
  columns: string[];
  rows: Record<string, number>[];
}

const addRow = (s: TableState, row: Record<string, number>): TableState => ({
  columns: [...s.columns, ...Object.keys(row).filter((k) => !s.columns.includes(k))],
  rows: [...s.rows, row],
});

/**
 * Lightning's CSVLogger as a value: `dir/metrics.csv` with one row per epoch (`epoch`, `step`,
 * then every metric), its header the union of the metrics logged so far in the order they first
 * appeared (a missing value is an empty cell). Rank 0 rewrites the file atomically after each
 * epoch. Values are written as JavaScript prints them (shortest round trip; NaN, Infinity).
 */
export function csvLogger(options: CsvLoggerOptions): Callback<TableState> {
  const op = "csvLogger";
  const opts = checkOptions(op, options, ["dir", "filename"]);
  const dir = checkDir(op, opts.dir);
  const file = opts.filename ?? "metrics.csv";
  return {
    name: op,
    init: () => ({ columns: [], rows: [] }),
    epochEnd(s, e) {
      const state = addRow(s, { epoch: e.epoch, step: e.step, ...e.metrics });
      if (e.rank === 0) {
        const cell = (v: number | undefined) => (v === undefined ? "" : String(v));
        const lines = [
          state.columns.map(csvField).join(","),
          ...state.rows.map((r) => state.columns.map((c) => cell(r[c])).join(",")),
        ];
        mkdirSync(dir, { recursive: true });
        writeFileAtomic(join(dir, file), [new TextEncoder().encode(`${lines.join("\n")}\n`)]);
      }
      return { state };
    },
  };
}

const csvField = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

export interface ChartLoggerOptions {
  dir: string;
  /** Default "metrics.svg". */
  filename?: string;
  /** The caption under the chart. */
  title?: string;
}

/**
 * The demo's SVG chart for any run: `dir/metrics.svg` with one panel per metric over the epochs
 * (lineChart), rewritten atomically by rank 0 after each epoch.
 */
export function chartLogger(options: ChartLoggerOptions): Callback<TableState> {
  const op = "chartLogger";
  const opts = checkOptions(op, options, ["dir", "filename", "title"]);
  const dir = checkDir(op, opts.dir);
  const file = opts.filename ?? "metrics.svg";
  return {
    name: op,
    init: () => ({ columns: [], rows: [] }),
    epochEnd(s, e) {
      const state = addRow(s, e.metrics);
      if (e.rank === 0) {
        const panels = state.columns.map((c) => ({
          label: c,
          series: [{ name: c, values: state.rows.filter((r) => c in r).map((r) => r[c]) }],
        }));
        mkdirSync(dir, { recursive: true });
        const svg = lineChart(opts.title ?? `plait fit: ${state.rows.length} epochs`, panels);
        writeFileAtomic(join(dir, file), [new TextEncoder().encode(svg)]);
      }
      return { state };
    },
  };
}
