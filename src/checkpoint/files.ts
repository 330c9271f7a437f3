import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import process from "node:process";

/** A name beside `path` that no other writer uses: `.<name>.<tag>-<pid>-<random>`. */
export function siblingName(path: string, tag: string): string {
  return join(dirname(path), `.${basename(path)}.${tag}-${process.pid}-${randomBytes(4).toString("hex")}`);
}

/** Writes `chunks` to a new file `path` (failing if it exists) and flushes it to disk. */
export function writeNewFile(path: string, chunks: readonly Uint8Array[]): void {
  const fd = openSync(path, "wx");
  try {
    for (const chunk of chunks) {
      for (let done = 0; done < chunk.length; ) done += writeSync(fd, chunk, done, chunk.length - done);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Replaces `path` with `chunks` all at once: a reader sees the old file or the new one, never a part. */
export function writeFileAtomic(path: string, chunks: readonly Uint8Array[]): void {
  const tmp = siblingName(path, "tmp");
  try {
    writeNewFile(tmp, chunks);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  syncDir(dirname(path));
}

/** Flushes a directory's entries (renames, new files) to disk. */
export function syncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
