/** One line of a chart: a name and its y values at x = 1, 2, … (e.g. per epoch). */
export interface Series {
  name: string;
  values: readonly number[];
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"];

/**
 * A self-contained SVG with one panel per group of series (each panel scaled to its own y range),
 * x axis = step index starting at 1. No dependencies: the demo writes it next to its metrics, and
 * fit's chartLogger after every epoch.
 */
export function lineChart(title: string, panels: { label: string; series: Series[] }[]): string {
  const w = 420;
  const h = 260;
  const pad = { l: 52, r: 16, t: 34, b: 36 };
  const out: string[] = [];
  panels.forEach((panel, p) => {
    const x0 = p * w;
    const all = panel.series.flatMap((s) => s.values.filter(Number.isFinite));
    const lo = Math.min(...all);
    const hi = Math.max(...all);
    const span = hi > lo ? hi - lo : 1;
    const n = Math.max(...panel.series.map((s) => s.values.length), 2);
    const px = (i: number) => x0 + pad.l + ((w - pad.l - pad.r) * i) / (n - 1);
    const py = (v: number) => pad.t + (h - pad.t - pad.b) * (1 - (v - lo) / span);
    out.push(`<text x="${x0 + w / 2}" y="20" text-anchor="middle" font-size="13">${esc(panel.label)}</text>`);
    out.push(`<line x1="${x0 + pad.l}" y1="${h - pad.b}" x2="${x0 + w - pad.r}" y2="${h - pad.b}" stroke="#444"/>`);
    out.push(`<line x1="${x0 + pad.l}" y1="${pad.t}" x2="${x0 + pad.l}" y2="${h - pad.b}" stroke="#444"/>`);
    for (const v of [lo, lo + span / 2, hi]) {
      out.push(`<text x="${x0 + pad.l - 4}" y="${py(v) + 4}" text-anchor="end" font-size="10">${fmt(v)}</text>`);
    }
    out.push(`<text x="${x0 + w / 2}" y="${h - 8}" text-anchor="middle" font-size="10">epoch (1…${n})</text>`);
    panel.series.forEach((s, i) => {
      const pts = s.values.map((v, j) => `${px(j).toFixed(1)},${py(v).toFixed(1)}`).join(" ");
      const color = COLORS[i % COLORS.length];
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts}"/>`);
      for (const [j, v] of s.values.entries())
        out.push(`<circle cx="${px(j)}" cy="${py(v)}" r="2.5" fill="${color}"/>`);
      out.push(
        `<text x="${x0 + w - pad.r}" y="${pad.t + 12 * i}" text-anchor="end" font-size="10" fill="${color}">${esc(s.name)}</text>`,
      );
    });
  });
  const width = w * panels.length;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${h + 20}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/><text x="8" y="${h + 14}" font-size="10" fill="#666">${esc(title)}</text>${out.join("")}</svg>\n`;
}

const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3));
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
