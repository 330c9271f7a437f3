"""PyTorch baseline for test/gpu/bench.mjs: python3 test/gpu/torch_bench.py <torch.json>.

torch.matmul at 8192^3 in f32 (TF32 off, as cublasSgemm) and bf16, and a device-to-device copy,
each timed with CUDA events: 3 warm-up runs, then the mean of 10.
"""
import json
import sys

import torch

out = sys.argv[1] if len(sys.argv) > 1 else "torch.json"
torch.backends.cuda.matmul.allow_tf32 = False
dev = torch.device("cuda:0")
res = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0)}


def timed(fn, warm=3, reps=10):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(reps):
        fn()
    b.record()
    torch.cuda.synchronize()
    return a.elapsed_time(b) / reps


n = 8192
for name, dt in (("f32", torch.float32), ("bf16", torch.bfloat16)):
    x = torch.randn(n, n, device=dev, dtype=dt)
    y = torch.randn(n, n, device=dev, dtype=dt)
    ms = timed(lambda: torch.matmul(x, y))
    res[f"gemm_{name}"] = {"ms": ms, "tflops": 2 * n**3 / ms / 1e9}
    del x, y
nbytes = 256 << 20
src = torch.empty(nbytes, dtype=torch.uint8, device=dev)
dst = torch.empty_like(src)
ms = timed(lambda: dst.copy_(src), reps=20)
res["d2d_copy"] = {"bytes": nbytes, "ms": ms, "gbps_read_write": 2 * nbytes / ms / 1e6}
with open(out, "w") as f:
    json.dump(res, f, indent=1)
print(json.dumps(res))
