"""Reference loss-scale trajectories from PyTorch's GradScaler.

Writes crates/amp/tests/fixtures/gradscaler_trajectories.json: for several
scaler settings and scripted sequences of clean / Inf / NaN steps (one or two
optimizers), the scale, growth tracker and which optimizer steps were applied
after every `scaler.step(...)` + `scaler.update()`.

    /work/venv/bin/python scripts/gradscaler_fixture.py
"""

import json
import math
import pathlib
import random

import torch

CONFIGS = [
    dict(name="defaults", init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000),
    dict(name="fast_growth", init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5, growth_interval=3),
    dict(name="odd_factors", init_scale=1000.0, growth_factor=3.0, backoff_factor=0.25, growth_interval=5),
    dict(name="gentle", init_scale=2.0**24, growth_factor=1.5, backoff_factor=0.9, growth_interval=7),
    dict(name="near_overflow", init_scale=2.0**126, growth_factor=2.0, backoff_factor=0.5, growth_interval=2),
    dict(name="interval_one", init_scale=1.0, growth_factor=4.0, backoff_factor=0.125, growth_interval=1),
]


def script(rng: random.Random, steps: int, n_opt: int, p_bad: float):
    """Per step, per optimizer: 'ok', 'inf', '-inf' or 'nan'."""
    out = []
    for _ in range(steps):
        row = []
        for _ in range(n_opt):
            r = rng.random()
            row.append("ok" if r >= p_bad else rng.choice(["inf", "-inf", "nan"]))
        out.append(row)
    return out


def grad_value(event: str, scale: float) -> float:
    return {"ok": 0.5 * scale, "inf": math.inf, "-inf": -math.inf, "nan": math.nan}[event]


def run(cfg, events):
    n_opt = len(events[0])
    params = [torch.nn.Parameter(torch.zeros(3)) for _ in range(n_opt)]
    opts = [torch.optim.SGD([p], lr=1.0) for p in params]
    scaler = torch.amp.GradScaler(
        "cpu",
        init_scale=cfg["init_scale"],
        growth_factor=cfg["growth_factor"],
        backoff_factor=cfg["backoff_factor"],
        growth_interval=cfg["growth_interval"],
    )
    traj = []
    for row in events:
        scaler.scale(torch.ones(()))  # what `scaler.scale(loss)` does first: materialise the scale
        scale = scaler.get_scale()
        applied = []
        for p, opt, ev in zip(params, opts, row):
            opt.zero_grad()
            p.grad = torch.full((3,), grad_value(ev, scale))
            before = p.detach().clone()
            scaler.step(opt)
            applied.append(bool(not torch.equal(before, p.detach())))
        scaler.update()
        traj.append(
            dict(
                events=row,
                applied=applied,
                scale=scaler.get_scale(),
                growth_tracker=int(scaler._growth_tracker.item()),
            )
        )
    return traj


def main():
    rng = random.Random(20181)
    cases = []
    for cfg in CONFIGS:
        for n_opt, p_bad, steps in [(1, 0.05, 300), (1, 0.5, 60), (2, 0.1, 120)]:
            if cfg["name"] == "defaults":
                steps = 4200 if p_bad < 0.1 else steps
                p_bad = 0.0005 if p_bad < 0.1 else p_bad
            events = script(rng, steps, n_opt, p_bad)
            cases.append(dict(config=cfg, trajectory=run(cfg, events)))
    out = pathlib.Path(__file__).resolve().parent.parent / "crates/amp/tests/fixtures/gradscaler_trajectories.json"
    out.write_text(json.dumps(dict(torch_version=torch.__version__, cases=cases)))
    print(f"wrote {out} ({len(cases)} cases, torch {torch.__version__})")


if __name__ == "__main__":
    main()
