// Bulk copy with `memory.copy`: the speed-of-light baseline every memory-bound kernel is
// measured against (bench/), and the copy under Tensor clones.

export function copy_bytes(dst: usize, src: usize, n: usize): void {
  memory.copy(dst, src, n);
}
