/**
 * The shm backend's control block: one region of the shared memory, allocated by the thread
 * that starts the world and handed to every rank by address.
 *
 *   header (256 B)        magic, world size, small-message limit, world id, first fault, bell,
 *                         sleepers
 *   rank slots (1 KiB)    per rank: arrive/done/busy counters, state, two call descriptors
 *                         (alternating by call parity), and the rank's failure message
 *   staging buffers       per rank: two buffers of `smallBytes` (small allreduces, by parity)
 *
 * Counters only grow: a rank stores k into its `arrive` word when it posts its k-th call and
 * into `done` when it has finished reading and writing its peers' buffers for that call.
 * Every store that another rank may wait for is followed by `ring()`: while someone sleeps,
 * the bell word is bumped and notified. Sleepers count themselves, then read the bell, then
 * check their condition again, so no wake-up is lost.
 */

import type { CommFailure } from "./errors.ts";

export const HEADER_BYTES = 256;
export const RANK_BYTES = 1024;
const MAGIC = 0x706c6169;

/**
 * Int32 indices in the header, one cache line per kind of traffic: read-only words, the fault
 * word (read by every spinning rank, written once), the bell (bumped by every arrival), and the
 * sleepers count (read by every bell ring, written only around sleeps).
 */
export const H = { magic: 0, worldSize: 1, smallBytes: 2, id: 3, fault: 16, bell: 32, sleepers: 48 } as const;

/** Int32 indices in a rank slot. */
export const R = { arrive: 0, done: 1, busy: 2, state: 3, msgLen: 4, reason: 5, desc: 16 } as const;

/** Int32 indices in a call descriptor (16 words; two per rank, chosen by call parity). */
export const D = { seq: 0, kind: 1, dtype: 2, op: 3, count: 4, ptr: 5, root: 6, leaf: 7, leaves: 8, tree: 9 } as const;

/** A rank's life: running, finished its work, failed, or its worker exited. */
export const STATE = { running: 0, ended: 1, failed: 2, exited: 3 } as const;

const MSG_OFFSET = 256;
const MSG_BYTES = RANK_BYTES - MSG_OFFSET;

/**
 * The default size of one staging buffer, i.e. the largest allreduce that takes the one-barrier
 * path: 64 KiB, less for large worlds (all staging buffers together stay within 8 MiB).
 */
export function defaultSmallBytes(worldSize: number): number {
  return Math.max(4096, Math.min(65536, Math.floor((4 << 20) / worldSize / 64) * 64));
}

export function controlBytes(worldSize: number, smallBytes = defaultSmallBytes(worldSize)): number {
  return HEADER_BYTES + worldSize * (RANK_BYTES + 2 * smallBytes);
}

/**
 * Writes a fresh control block for `worldSize` ranks at `base` (controlBytes(worldSize,
 * smallBytes) bytes). `smallBytes` (a multiple of 64, 0 for none) is the world's one-barrier
 * limit: every rank reads it from here, so all take the same path for each call.
 */
export function initControl(
  memory: WebAssembly.Memory,
  base: number,
  worldSize: number,
  smallBytes = defaultSmallBytes(worldSize),
): void {
  new Uint8Array(memory.buffer, base, HEADER_BYTES + worldSize * RANK_BYTES).fill(0);
  const h = new Int32Array(memory.buffer, base, HEADER_BYTES / 4);
  h[H.worldSize] = worldSize;
  h[H.smallBytes] = smallBytes;
  h[H.id] = (Math.random() * 2 ** 31) | 0; // tells this world from an earlier one at the same address
  Atomics.store(h, H.magic, MAGIC);
}

const REASONS: readonly CommFailure[] = ["failed", "exited", "ended", "timeout", "mismatch", "aborted"];

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The first fault of a world: where it started, why, and the sentence that explains it. */
export interface Fault {
  rank: number;
  reason: CommFailure;
  text: string;
}

/** Views over one control block, for the ranks and for the thread that started them. */
export class Control {
  readonly i32: Int32Array;
  readonly worldSize: number;
  readonly smallBytes: number;
  /** The world's id: with the memory and the base, what tells this world's control block from another's. */
  readonly id: number;

  constructor(
    readonly memory: WebAssembly.Memory,
    readonly base: number,
  ) {
    const h = new Int32Array(memory.buffer, base, HEADER_BYTES / 4);
    if (Atomics.load(h, H.magic) !== MAGIC) throw new Error(`plait: no shm control block at address ${base}`);
    this.worldSize = h[H.worldSize];
    this.smallBytes = h[H.smallBytes];
    this.id = h[H.id];
    this.i32 = new Int32Array(memory.buffer, base, controlBytes(this.worldSize, this.smallBytes) / 4);
  }

  /** Int32 index of `field` in rank `rank`'s slot. */
  at(rank: number, field: number): number {
    return (HEADER_BYTES + rank * RANK_BYTES) / 4 + field;
  }

  /** Int32 index of word `field` of rank `rank`'s descriptor for calls of parity `parity`. */
  desc(rank: number, parity: number, field: number): number {
    return this.at(rank, R.desc + 16 * parity + field);
  }

  /** Byte address of rank `rank`'s staging buffer for calls of parity `parity`. */
  staging(rank: number, parity: number): number {
    return this.base + HEADER_BYTES + this.worldSize * RANK_BYTES + (2 * rank + parity) * this.smallBytes;
  }

  /** Wakes the ranks sleeping on the bell, if any (one load when none sleeps: see nap in shm-wait.ts). */
  ring(): void {
    if (Atomics.load(this.i32, H.sleepers) === 0) return;
    Atomics.add(this.i32, H.bell, 1);
    Atomics.notify(this.i32, H.bell);
  }

  /**
   * Records that `rank` failed with `text`, the sentence every other rank's error will carry.
   * The first fault recorded stays the world's fault.
   */
  recordFault(rank: number, reason: CommFailure, text: string): void {
    const len = this.at(rank, R.msgLen);
    // The slot's message is written once: a second recorder for the same rank keeps the first.
    if (Atomics.compareExchange(this.i32, len, 0, -1) === 0) {
      const bytes = encoder.encode(text).subarray(0, MSG_BYTES);
      new Uint8Array(this.memory.buffer, this.base + (this.at(rank, 0) << 2) + MSG_OFFSET, bytes.length).set(bytes);
      Atomics.store(this.i32, this.at(rank, R.reason), REASONS.indexOf(reason));
      Atomics.store(this.i32, len, bytes.length);
    }
    Atomics.store(this.i32, this.at(rank, R.state), reason === "exited" ? STATE.exited : STATE.failed);
    Atomics.compareExchange(this.i32, H.fault, 0, rank + 1);
    this.ring();
  }

  /** The world's first fault; undefined while every rank is sound. */
  fault(): Fault | undefined {
    const f = Atomics.load(this.i32, H.fault);
    if (f === 0) return undefined;
    const rank = f - 1;
    const text = this.message(rank); // waits for the message, which is stored after the reason
    return { rank, reason: REASONS[Atomics.load(this.i32, this.at(rank, R.reason))], text };
  }

  private message(rank: number): string {
    const len = this.at(rank, R.msgLen);
    // Another thread may be writing it right now: a few hundred bytes, so a short bounded spin.
    let n = Atomics.load(this.i32, len);
    for (let i = 0; n <= 0 && i < 1e6; i++) n = Atomics.load(this.i32, len);
    if (n <= 0) return `rank ${rank} failed (its message was not recorded)`;
    const start = this.base + (this.at(rank, 0) << 2) + MSG_OFFSET;
    return decoder.decode(new Uint8Array(this.memory.buffer, start, n).slice());
  }

  state(rank: number): number {
    return Atomics.load(this.i32, this.at(rank, R.state));
  }

  /** Marks a rank's state without a fault (it ended its work), and wakes the waiters. */
  setState(rank: number, state: number): void {
    Atomics.store(this.i32, this.at(rank, R.state), state);
    this.ring();
  }
}
