/** Where progress goes: a redrawn bar on a TTY, one line per epoch otherwise, or nothing. */
export type ProgressMode = "bar" | "lines" | "none";

export interface ProgressSink {
  write(text: string): void;
  isTTY?: boolean;
}

/** Picks "bar" for a terminal, "lines" for a pipe or file, "none" when output must stay clean (--json). */
export function progressMode(stream: ProgressSink, quiet: boolean): ProgressMode {
  if (quiet) return "none";
  return stream.isTTY ? "bar" : "lines";
}

/** A progress reporter for one epoch at a time: `step` redraws the bar, `epochEnd` prints the summary. */
export class Progress {
  private lastDraw = 0;

  constructor(
    private readonly mode: ProgressMode,
    private readonly out: ProgressSink,
    private readonly epochs: number,
  ) {}

  step(epoch: number, done: number, total: number, loss: number): void {
    if (this.mode !== "bar") return;
    const now = Date.now();
    if (done < total && now - this.lastDraw < 80) return; // redraw at most ~12 times a second
    this.lastDraw = now;
    const width = 30;
    const filled = Math.round((width * done) / Math.max(total, 1));
    const bar = `${"█".repeat(filled)}${"░".repeat(width - filled)}`;
    this.out.write(`\repoch ${epoch}/${this.epochs} ${bar} ${done}/${total}  loss ${loss.toFixed(4)}`);
  }

  epochEnd(epoch: number, summary: string): void {
    if (this.mode === "none") return;
    if (this.mode === "bar") this.out.write("\r\x1b[2K");
    this.out.write(`epoch ${epoch}/${this.epochs}  ${summary}\n`);
  }
}
