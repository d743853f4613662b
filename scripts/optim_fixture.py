"""Reference optimizer trajectories from PyTorch's torch.optim.

Writes crates/autograd/tests/fixtures/optim_trajectories.json: for SGD
(plain, momentum, dampening, Nesterov, weight decay), Adam (with and without
L2, and with β1 < 0.5, PyTorch's other lerp formula) and AdamW, one f32
parameter of N = 40 elements (a vector body and a scalar tail in PyTorch's
AVX2 and AVX-512 loops) updated with 6 scripted gradients; after each step
the parameter's values (as f32 bit patterns, so the comparison is exact
about what PyTorch stored) and, for every step, the
learning rate used (changed mid-run to exercise set_lr). For Adam/AdamW
also, per step, the elements where PyTorch's CPU `sqrt` of the second
moment (MKL) is not the correctly rounded root (`sqrt_off`): only there,
and afterwards, may a correctly rounding implementation differ.

    /work/venv/bin/python scripts/optim_fixture.py
"""

import json
import math
import pathlib
import random

import torch

torch.use_deterministic_algorithms(True)
N = 40

CONFIGS = [
    dict(name="sgd", opt="sgd", lr=0.1),
    dict(name="sgd_momentum", opt="sgd", lr=0.05, momentum=0.9),
    dict(name="sgd_dampening_wd", opt="sgd", lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01),
    dict(name="sgd_nesterov_wd", opt="sgd", lr=0.02, momentum=0.9, nesterov=True, weight_decay=1e-3),
    dict(name="adam", opt="adam", lr=0.01),
    dict(name="adam_l2", opt="adam", lr=0.003, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
    dict(name="adam_low_beta1", opt="adam", lr=0.02, betas=(0.3, 0.9)),
    dict(name="adamw", opt="adamw", lr=0.01, weight_decay=0.1),
]


def make(cfg, params):
    kw = {k: v for k, v in cfg.items() if k not in ("name", "opt")}
    if cfg["opt"] == "sgd":
        return torch.optim.SGD(params, foreach=False, **kw)
    if cfg["opt"] == "adam":
        return torch.optim.Adam(params, foreach=False, **kw)
    return torch.optim.AdamW(params, foreach=False, **kw)


def bits(t):
    return [int(x) for x in t.detach().view(torch.int32).tolist()]


def main():
    rng = random.Random(8)
    init = [rng.uniform(-2, 2) for _ in range(N)]
    grads = [[rng.uniform(-1, 1) * 10 ** rng.uniform(-3, 0) for _ in range(N)] for _ in range(6)]
    out = dict(init=bits(torch.tensor(init, dtype=torch.float32)),
               grads=[bits(torch.tensor(g, dtype=torch.float32)) for g in grads], runs=[])
    for cfg in CONFIGS:
        p = torch.nn.Parameter(torch.tensor(init, dtype=torch.float32))
        opt = make(cfg, [p])
        values, lrs, sqrt_off = [], [], []
        for step, g in enumerate(grads):
            if step == 3:
                for group in opt.param_groups:
                    group["lr"] = group["lr"] * 0.5
            lrs.append(opt.param_groups[0]["lr"])
            p.grad = torch.tensor(g, dtype=torch.float32)
            opt.step()
            values.append(bits(p))
            if cfg["opt"] != "sgd":
                v = opt.state[p]["exp_avg_sq"]
                got = v.sqrt().tolist()
                exact = torch.tensor([math.sqrt(x) for x in v.tolist()], dtype=torch.float32).tolist()
                sqrt_off.append([i for i, (a, b) in enumerate(zip(got, exact)) if a != b])
        run = dict(config=cfg, lrs=lrs, values=values)
        if cfg["opt"] != "sgd":
            run["sqrt_off"] = sqrt_off
        out["runs"].append(run)
    path = pathlib.Path(__file__).resolve().parents[1] / "crates/autograd/tests/fixtures/optim_trajectories.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
