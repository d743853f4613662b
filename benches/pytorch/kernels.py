"""PyTorch's counterparts of the issue-5 rows of benches/kernels.rs, on one
thread, with the same sizes and data layout:

- `log_softmax_rows_1024`: torch.log_softmax over 256 rows of 1024 f32 and
  f16 values (dim=-1, `out=` preallocated), elements per second;
- `optim/1M`: one AdamW step on 1M FP32 parameters (torch.optim.AdamW with
  `fused=True`, else `foreach=True`) followed by the f16 working copy
  (`h.copy_(w)`), in bytes moved per second counted as benches/kernels.rs
  counts them (30 bytes per parameter), beside `dst.copy_(src)` of 15 bytes
  per parameter (30 read + written);
- `cross_entropy`: torch.nn.functional.cross_entropy forward and backward
  from f32 logits (128×10 and 2048×65), elements per second.

    /work/venv/bin/python benches/pytorch/kernels.py

Prints one JSON object per row: median seconds per call and the rate.
"""

import argparse
import json
import statistics
import time

import torch


def median_time(fn, reps, min_s):
    fn()
    # Calls per sample so that one sample lasts at least `min_s`.
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    per = max(1, int(min_s / once))
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(per):
            fn()
        samples.append((time.perf_counter() - t0) / per)
    return statistics.median(samples)


def values(n, gen):
    # Values a network would hold: spread over binades, as benches/kernels.rs.
    u = torch.rand(n, generator=gen) - 0.5
    e = torch.randint(-12, 12, (n,), generator=gen).to(torch.float32)
    return u * torch.pow(2.0, e)


def emit(name, secs, amount, unit):
    print(json.dumps({"row": name, "median_s": secs, unit: amount / secs}), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--reps", type=int, default=15)
    p.add_argument("--min-s", type=float, default=0.05)
    a = p.parse_args()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(7)

    rows, n = 256, 1024
    x = values(rows * n, gen).reshape(rows, n)
    for dt, name in [(torch.float32, "f32"), (torch.float16, "f16")]:
        xi = x.to(dt)
        out = torch.empty_like(xi)
        t = median_time(lambda: torch.log_softmax(xi, dim=-1, out=out), a.reps, a.min_s)
        emit(f"log_softmax_rows_1024/{name}/pytorch", t, rows * n, "elem_per_s")

    n = 1 << 20
    w = torch.nn.Parameter(values(n, gen))
    w.grad = values(n, gen) * 1e-2
    h = torch.empty(n, dtype=torch.float16)
    kind = "fused"
    try:
        opt = torch.optim.AdamW([w], lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, fused=True)
        opt.step()
    except (RuntimeError, TypeError):
        kind = "foreach"
        opt = torch.optim.AdamW([w], lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, foreach=True)

    def adamw():
        opt.step()
        with torch.no_grad():
            h.copy_(w)

    t = median_time(adamw, a.reps, a.min_s)
    emit(f"optim/1M/adamw_f16_copy/pytorch-{kind}", t, 30 * n, "bytes_per_s")
    src = torch.full((15 * n,), 0x5A, dtype=torch.uint8)
    dst = torch.empty_like(src)
    t = median_time(lambda: dst.copy_(src), a.reps, a.min_s)
    emit("optim/1M/copy/pytorch", t, 30 * n, "bytes_per_s")

    for rows, n in [(128, 10), (2048, 65)]:
        logits = values(rows * n, gen).reshape(rows, n).requires_grad_()
        target = torch.tensor([(i * 7) % n for i in range(rows)])

        def ce():
            logits.grad = None
            torch.nn.functional.cross_entropy(logits, target).backward()

        t = median_time(ce, a.reps, a.min_s)
        emit(f"cross_entropy/{rows}x{n}/fwd_bwd_f32/pytorch", t, rows * n, "elem_per_s")


if __name__ == "__main__":
    main()
