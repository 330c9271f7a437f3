// A caching allocator for device memory, as torch's CUDA allocator is in spirit: a disposed
// CudaTensor's block goes to a free list keyed by device and rounded size instead of to cudaFree,
// and the next tensor of that size takes it. cudaFree synchronizes the whole device and
// cudaMalloc is slow, so without this every step of training (dozens of temporaries) would wait
// for the GPU at each dispose. Reuse is safe because plait queues every op on one stream per
// device in issue order: work that read the old tensor is ahead of any work on the new one. (A
// user stream touching plait's tensors must order itself against that stream, as before.)

/** Rounded size of a request: 512-byte steps up to 1 MiB, then 2 MiB steps. */
export function roundBlock(bytes: number): number {
  const small = 512;
  const large = 2 << 20;
  return bytes <= 1 << 20 ? Math.max(small, Math.ceil(bytes / small) * small) : Math.ceil(bytes / large) * large;
}

export class BlockPool {
  private readonly free = new Map<string, bigint[]>();
  private readonly sizes = new Map<bigint, { device: number; bytes: number }>();
  /** Bytes held in free lists (not in use), per device. */
  private readonly cached = new Map<number, number>();

  constructor(
    private readonly malloc: (device: number, bytes: number, context: string) => bigint,
    private readonly release: (device: number, ptr: bigint) => void,
  ) {}

  alloc(device: number, bytes: number, context: string): bigint {
    const size = roundBlock(bytes);
    const hit = this.free.get(`${device}:${size}`)?.pop();
    if (hit !== undefined) {
      this.cached.set(device, (this.cached.get(device) ?? 0) - size);
      return hit;
    }
    let ptr: bigint;
    try {
      ptr = this.malloc(device, size, context);
    } catch (e) {
      if ((this.cached.get(device) ?? 0) === 0) throw e;
      this.emptyCache(device); // out of memory with blocks cached: give them back and try once more
      ptr = this.malloc(device, size, context);
    }
    this.sizes.set(ptr, { device, bytes: size });
    return ptr;
  }

  /** Returns a block from alloc() to its free list. */
  dispose(device: number, ptr: bigint): void {
    const s = this.sizes.get(ptr);
    if (s === undefined || s.device !== device)
      throw new Error(`plait: device memory ${ptr} on cuda:${device} was not allocated by plait's pool`);
    const key = `${device}:${s.bytes}`;
    const list = this.free.get(key);
    if (list) list.push(ptr);
    else this.free.set(key, [ptr]);
    this.cached.set(device, (this.cached.get(device) ?? 0) + s.bytes);
  }

  /** Frees every cached (unused) block of `device` (every device when omitted) back to CUDA. */
  emptyCache(device?: number): void {
    for (const [key, list] of this.free) {
      const d = Number(key.slice(0, key.indexOf(":")));
      if (device !== undefined && d !== device) continue;
      for (const ptr of list) {
        this.release(d, ptr);
        this.sizes.delete(ptr);
      }
      this.free.delete(key);
      this.cached.set(d, 0);
    }
  }

  /** Bytes cached in free lists on `device`. */
  cachedBytes(device: number): number {
    return this.cached.get(device) ?? 0;
  }
}
