"""The demo's MLP trained in plain numpy: the peer of plait's demo training in bench/train.ts.

784-256-10, ReLU, softmax cross-entropy (mean over the batch), SGD with momentum (torch's rule:
v = mu*v + g; w -= lr*v), batch 64, float32, the loss read every step. Reads the training
digits from a raw file (n*784 float32 images, then n int32 labels) that the bench writes, so
both train on the same data. Prints one JSON line: samples/s per epoch and the final loss.
Run it with OPENBLAS_NUM_THREADS=1 for one thread.
"""
import json
import sys
import time

import numpy as np


def main(path, n, epochs, batch=64, lr=0.1, mu=0.9, hidden=256):
    raw = np.fromfile(path, dtype=np.uint8)
    images = raw[: n * 784 * 4].view(np.float32).reshape(n, 784)
    labels = raw[n * 784 * 4 :].view(np.int32)[:n]
    rng = np.random.default_rng(0)
    w1 = (rng.standard_normal((784, hidden)) * np.sqrt(2 / 784)).astype(np.float32)
    b1 = np.zeros(hidden, np.float32)
    w2 = (rng.standard_normal((hidden, 10)) * np.sqrt(1 / hidden)).astype(np.float32)
    b2 = np.zeros(10, np.float32)
    params = [w1, b1, w2, b2]
    velocity = [np.zeros_like(p) for p in params]
    rows = np.arange(batch)
    rates, loss = [], 0.0
    for epoch in range(epochs):
        order = rng.permutation(n)
        t0 = time.perf_counter()
        for start in range(0, n - batch + 1, batch):
            idx = order[start : start + batch]
            x, y = images[idx], labels[idx]
            h = x @ w1 + b1
            np.maximum(h, 0, out=h)
            z = h @ w2 + b2
            z -= z.max(axis=1, keepdims=True)
            e = np.exp(z)
            s = e.sum(axis=1, keepdims=True)
            loss = float(np.mean(np.log(s[:, 0]) - z[rows, y]))
            g = e / s
            g[rows, y] -= 1
            g /= batch
            dh = g @ w2.T
            dh *= h > 0
            grads = [x.T @ dh, dh.sum(axis=0), h.T @ g, g.sum(axis=0)]
            for p, v, gr in zip(params, velocity, grads):
                v *= mu
                v += gr
                p -= lr * v
        rates.append((n // batch) * batch / (time.perf_counter() - t0))
    print(json.dumps({"samplesPerSec": rates, "finalLoss": loss, "numpy": np.__version__}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 10)
