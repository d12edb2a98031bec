"""What the doors' argument and applicability checks cost, as a ratio to a hand-written floor.

The floor is the closed-form score-function estimate of ∇(μ, σ) E_{N(μ,σ²)}[x²] written by hand in
torch (sample, f, scores, means and standard deviations). Rows: the whole ``estimate_grad`` call,
and the checks alone (``estimate_grad_arguments`` before, ``check_estimate`` after), interleaved.

    .venv/bin/python benchmarks/argument_checks.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.distributions import Normal

sys.path.insert(0, str(Path(__file__).parent))
from _common import time_calls, write_results  # noqa: E402

import scoregrad as sg  # noqa: E402
from scoregrad import door_arguments as doors  # noqa: E402
from scoregrad.core import arguments as A  # noqa: E402


def main() -> None:
    dev = torch.device("cpu")
    mu = torch.tensor(0.5, requires_grad=True)
    s = torch.tensor(1.0, requires_grad=True)
    params = {"mu": mu, "s": s}

    def dist_fn(mu, s):
        return Normal(mu, s)

    def f(x):
        return x**2

    est = sg.ScoreFunction()
    dist = dist_fn(**params)
    grads = {
        "mu": torch.tensor(0.3, dtype=torch.float64),
        "s": torch.tensor(0.2, dtype=torch.float64),
    }
    rows = []
    for n in (100, 100_000):

        def floor(n=n):
            with torch.no_grad():
                x = torch.randn(n) * s + mu
                fx = f(x)
                z = (x - mu) / s
                g1, g2 = fx * z / s, fx * (z * z - 1) / s
                return g1.mean(), g1.std(), g2.mean(), g2.std()

        fns = {
            "floor": floor,
            "estimate_grad": lambda n=n: sg.estimate_grad(f, dist_fn, params, n, est, seed=0),
            "checks before": lambda n=n: doors.estimate_grad_arguments(
                dist_fn, params, n, est, 0, None, None, None
            ),
            "checks after": lambda: A.check_estimate(dist, params, grads, est),
        }
        times = time_calls(fns, repeats=15, device=dev, min_seconds=0.05)
        for k, v in times.items():
            rows.append({"n": n, "what": k, "us": 1e6 * v, "ratio_to_floor": v / times["floor"]})
    lines = ["| n | what | µs | × floor |", "|---|---|---|---|"]
    lines += [
        f"| {r['n']} | {r['what']} | {r['us']:.1f} | {r['ratio_to_floor']:.2f} |" for r in rows
    ]
    table = "\n".join(lines)
    print(table)
    write_results("argument_checks", rows, table)


if __name__ == "__main__":
    main()
