"""PyTorch's training step for DESIGN.md's benchmark models, timed the way
benches/train_step.rs times mixprec's: zero_grad, forward, loss, backward,
optimizer step, on real data (the shipped MNIST and Shakespeare).

    /work/venv/bin/python benches/pytorch/train_step.py --threads 1 \
        --models mlp,cnn,char_lm --precisions f32,autocast-bf16,autocast-f16

Prints one JSON object per (model, precision, threads) with the median and
quartiles of the per-step time in milliseconds. Where oneDNN refuses a
primitive (its LSTM has no f16 form on CPUs without AVX-512-FP16), the step
is timed again with oneDNN off (PyTorch's own kernels) and the row says so
in "note".
"""

import argparse
import gzip
import json
import pathlib
import statistics
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "data"


def mnist_batch(batch):
    raw = gzip.open(DATA / "mnist/train-images-idx3-ubyte.gz").read()
    x = np.frombuffer(raw, np.uint8, offset=16)[: batch * 784].reshape(batch, 1, 28, 28)
    y = np.frombuffer(gzip.open(DATA / "mnist/train-labels-idx1-ubyte.gz").read(), np.uint8, offset=8)[:batch]
    x = (torch.from_numpy(x.astype(np.float32)) / 255.0 - 0.1307) / 0.3081
    return x, torch.from_numpy(y.astype(np.int64))


def text_batch(batch, seq):
    text = gzip.open(DATA / "text/shakespeare.txt.gz").read()
    vocab = sorted(set(text))
    idx = {c: i for i, c in enumerate(vocab)}
    ids = np.array([idx[c] for c in text[: batch * (seq + 1) * 4]], np.int64)
    starts = np.arange(batch) * (seq + 1) * 2
    x = np.stack([ids[s : s + seq] for s in starts])
    y = np.stack([ids[s + 1 : s + seq + 1] for s in starts])
    return torch.from_numpy(x), torch.from_numpy(y), len(vocab)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1, self.l2, self.l3 = nn.Linear(784, 512), nn.Linear(512, 512), nn.Linear(512, 10)

    def forward(self, x):
        x = x.reshape(x.shape[0], -1)
        return self.l3(F.relu(self.l2(F.relu(self.l1(x)))))


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32)
        self.c2, self.b2 = nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64)
        self.fc = nn.Linear(64 * 7 * 7, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.b1(self.c1(x))), 2)
        x = F.max_pool2d(F.relu(self.b2(self.c2(x))), 2)
        return self.fc(x.flatten(1))


class CharLM(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.emb = nn.Embedding(vocab, 64)
        self.lstm = nn.LSTM(64, 256, num_layers=2, batch_first=True)
        self.head = nn.Linear(256, vocab)

    def forward(self, x):
        h, _ = self.lstm(self.emb(x))
        return self.head(h)


def make(model_name):
    torch.manual_seed(0)
    if model_name == "mlp":
        x, y = mnist_batch(128)
        return MLP(), x, y, lambda out, y: F.cross_entropy(out, y)
    if model_name == "cnn":
        x, y = mnist_batch(128)
        return CNN(), x, y, lambda out, y: F.cross_entropy(out, y)
    if model_name == "char_lm":
        x, y, vocab = text_batch(32, 64)
        return CharLM(vocab), x, y, lambda out, y: F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
    raise ValueError(model_name)


def time_steps(model_name, precision, steps, repeats, warmup):
    model, x, y, loss_fn = make(model_name)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    dtype = {"autocast-bf16": torch.bfloat16, "autocast-f16": torch.float16}.get(precision)

    def step():
        opt.zero_grad(set_to_none=False)
        if dtype is None:
            loss = loss_fn(model(x), y)
        else:
            with torch.autocast("cpu", dtype=dtype):
                loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(warmup):
        step()
    per_step = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        per_step.append((time.perf_counter() - t0) / steps * 1e3)
    q = statistics.quantiles(per_step, n=4) if len(per_step) > 1 else per_step * 3
    return dict(median_ms=statistics.median(per_step), q1_ms=q[0], q3_ms=q[2])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1", help="comma-separated thread counts")
    ap.add_argument("--models", default="mlp,cnn,char_lm")
    ap.add_argument("--precisions", default="f32,autocast-bf16,autocast-f16")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (default max(3, steps/4))")
    args = ap.parse_args()
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        for model_name in args.models.split(","):
            for precision in args.precisions.split(","):
                steps = args.steps if not (precision == "autocast-f16") else max(3, args.steps // 4)
                warmup = args.warmup if args.warmup is not None else max(3, steps // 4)
                try:
                    r = time_steps(model_name, precision, steps, args.repeats, warmup)
                except RuntimeError as e:
                    with torch.backends.mkldnn.flags(enabled=False):
                        r = time_steps(model_name, precision, steps, args.repeats, warmup)
                    r["note"] = "oneDNN off (with it: " + str(e).splitlines()[0].split(". ")[0] + ")"
                r.update(model=model_name, precision=precision, threads=threads, torch=torch.__version__)
                print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
