"""PyTorch's matrix product (torch.mm) in f32, f16 and bf16, timed beside
benches/gemm.rs and examples/gemm_peak.rs: the same shapes (m×k×n, with the
MLP step's transposes), the same FLOP count (2·m·n·k), medians of repeated
samples.

    /work/venv/bin/python benches/pytorch/mm.py --threads 1,16 \
        --dtypes f32,f16,bf16 --shapes 1024,2048,mlp

Shapes: `S` (square), `MxKxN` or `MxKxN:TT` (`T` transposes that operand as
stored, e.g. `784x128x512:TN` is Xᵀ·G), `squares` (64…2048), `mlp` (the 8
GEMMs of the MLP step). Prints one JSON object per (shape, dtype, threads)
with the median time in milliseconds and GFLOP/s.
"""

import argparse
import json
import statistics
import time

import torch

SQUARES = [64, 128, 256, 512, 1024, 2048]
MLP = [
    ("fwd1", 128, 784, 512, "NN"),
    ("fwd2", 128, 512, 512, "NN"),
    ("fwd3", 128, 512, 10, "NN"),
    ("wgrad1", 784, 128, 512, "TN"),
    ("wgrad2", 512, 128, 512, "TN"),
    ("wgrad3", 512, 128, 10, "TN"),
    ("igrad2", 128, 512, 512, "NT"),
    ("igrad3", 128, 10, 512, "NT"),
]
DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def parse_shapes(spec):
    out = []
    for item in spec.split(","):
        if item == "squares":
            out += [(str(s), s, s, s, "NN") for s in SQUARES]
        elif item == "mlp":
            out += MLP
        else:
            dims, _, tt = item.partition(":")
            d = [int(x) for x in dims.split("x")]
            m, k, n = (d[0], d[0], d[0]) if len(d) == 1 else d
            out.append(("custom", m, k, n, tt or "NN"))
    return out


def operands(m, k, n, tt, dtype, gen):
    # Stored as the MLP step stores them; `.t()` is a view, as a BLAS transpose flag.
    a = torch.rand((k, m) if tt[0] == "T" else (m, k), generator=gen) - 0.5
    b = torch.rand((n, k) if tt[1] == "T" else (k, n), generator=gen) - 0.5
    a, b = a.to(dtype), b.to(dtype)
    return (a.t() if tt[0] == "T" else a), (b.t() if tt[1] == "T" else b)


def time_mm(a, b, reps, min_s):
    out = torch.mm(a, b)
    t = time.perf_counter()
    torch.mm(a, b, out=out)
    one = max(time.perf_counter() - t, 1e-7)
    calls = max(1, int(min_s / one + 0.999))
    samples = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(calls):
            torch.mm(a, b, out=out)
        samples.append((time.perf_counter() - t) / calls)
    return statistics.median(samples)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", default="1", help="comma-separated thread counts")
    p.add_argument("--dtypes", default="f32,f16,bf16")
    p.add_argument("--shapes", default="1024")
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--min-ms", type=float, default=30.0, help="minimum time of one sample")
    args = p.parse_args()
    gen = torch.Generator().manual_seed(0)
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        for name, m, k, n, tt in parse_shapes(args.shapes):
            for dt in args.dtypes.split(","):
                a, b = operands(m, k, n, tt, DTYPES[dt], gen)
                sec = time_mm(a, b, args.reps, args.min_ms / 1e3)
                print(
                    json.dumps(
                        {
                            "shape": f"{m}x{k}x{n}_{tt}",
                            "name": name,
                            "dtype": dt,
                            "threads": threads,
                            "torch": torch.__version__,
                            "median_ms": round(sec * 1e3, 4),
                            "gflops": round(2 * m * n * k / sec / 1e9, 2),
                        }
                    ),
                    flush=True,
                )


if __name__ == "__main__":
    main()
