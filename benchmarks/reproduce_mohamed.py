"""Reproduce Mohamed, Rosca, Figurnov & Mnih 2020 ("Monte Carlo Gradient Estimation in Machine
Learning"), section 3, figures 2-3: single-sample gradient variance of five estimators for
x ~ N(μ, σ²) at (μ, σ) = (1, 1) and the costs (x - k)², exp(-k x²), cos(k x), as k varies.

Measured variances (n samples per point) are compared with exact values by quadrature (scipy),
each with a z-score from the spread of the squared deviations. Writes
benchmarks/results/reproduce_mohamed.{json,md} and reproduce_mohamed.png.

    PYTHONPATH=src python benchmarks/reproduce_mohamed.py            # n = 50 000, 13 values of k
    PYTHONPATH=src python benchmarks/reproduce_mohamed.py --quick    # n = 10 000, 5 values
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributions as D

import scoregrad as sg
from scoregrad.control_variates import ScoreControlVariate
from scoregrad.diagnostics import normal_estimator_variances

RESULTS = Path(__file__).parent / "results"

ESTIMATORS = {
    "score_function": lambda: sg.ScoreFunction(),
    "optimal_baseline": lambda: sg.ScoreFunction(control_variate=ScoreControlVariate()),
    "pathwise": lambda: sg.Pathwise(),
    "mvd_coupled": lambda: sg.MeasureValued(coupling=True),
    "mvd": lambda: sg.MeasureValued(coupling=False),
}


def costs(k: float):
    """(torch cost, numpy cost, numpy derivative) for each of the section's three costs."""
    return {
        "square": (lambda x: (x - k) ** 2, lambda x: (x - k) ** 2, lambda x: 2 * (x - k)),
        "exp": (
            lambda x: torch.exp(-k * x**2),
            lambda x: np.exp(-k * x**2),
            lambda x: -2 * k * x * np.exp(-k * x**2),
        ),
        "cos": (lambda x: torch.cos(k * x), lambda x: np.cos(k * x), lambda x: -k * np.sin(k * x)),
    }


def measure(f, name, n, seed, device):
    mu = torch.tensor(1.0, dtype=torch.float64, device=device, requires_grad=True)
    sigma = torch.tensor(1.0, dtype=torch.float64, device=device, requires_grad=True)
    est = sg.estimate_grad(
        f, lambda mu, sigma: D.Normal(mu, sigma), {"mu": mu, "sigma": sigma}, n=n,
        estimator=ESTIMATORS[name](), seed=seed, return_per_sample=True,
    )  # fmt: skip
    out = []
    for p in ("mu", "sigma"):
        g = est.per_sample[p].cpu()
        d2 = (g - g.mean()) ** 2
        out.append((float(d2.mean()), float(d2.std() / n**0.5)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--points", type=int, default=13)
    ap.add_argument("--kmax", type=float, default=3.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.points = 10_000, 5
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    ks = [float(k) for k in np.linspace(0.0, args.kmax, args.points)]
    rows = []
    start = time.perf_counter()
    for ci, cost in enumerate(("square", "exp", "cos")):
        for ki, k in enumerate(ks):
            f_t, f_np, df_np = costs(k)[cost]
            exact = normal_estimator_variances(f_np, df_np, mu=1.0, sigma=1.0)
            for ei, name in enumerate(ESTIMATORS):
                meas = measure(f_t, name, args.n, 10_000 * ci + 100 * ki + ei, args.device)
                for j, p in enumerate(("mu", "sigma")):
                    v, se = meas[j]
                    ex = exact[name][j]
                    if max(v, ex) < 1e-12:  # both zero up to rounding (e.g. an exact estimator)
                        z = 0.0
                    else:
                        z = (v - ex) / se if se > 0 else float("inf")
                    rows.append({"cost": cost, "k": k, "estimator": name, "param": p,
                                 "measured": v, "stderr": se, "exact": ex, "z": z})  # fmt: skip
    seconds = time.perf_counter() - start
    zs = np.array([abs(r["z"]) for r in rows])
    head = {
        (r["estimator"], r["param"]): r for r in rows if r["cost"] == "square" and r["k"] == 0.0
    }
    paper = {"score_function": (30, 136), "optimal_baseline": (14, 64), "pathwise": (4, 12),
             "mvd_coupled": (1.093, 8)}  # fmt: skip
    lines = [
        "# Mohamed et al. 2020, section 3: single-sample gradient variance, x ~ N(1, 1)",
        "",
        f"n = {args.n} samples per point, {len(ks)} values of k in [0, {args.kmax}], device "
        f"{args.device}; exact values by scipy quadrature. {len(rows)} measured variances, "
        f"max |z| = {zs.max():.2f}, {int((zs > 4.42).sum())} above 4.42; {seconds:.0f} s.",
        "",
        "Cost (x - k)² at k = 0 (paper: 30/136, 14/64, 4/12, 1.093/8):",
        "",
        "| estimator | paper μ | exact μ | measured μ | paper σ | exact σ | measured σ |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ESTIMATORS:
        a, b = head[(name, "mu")], head[(name, "sigma")]
        pm, ps = paper.get(name, ("—", "—"))
        lines.append(
            f"| {name} | {pm} | {a['exact']:.4g} | {a['measured']:.4g} ± {a['stderr']:.2g} | "
            f"{ps} | {b['exact']:.4g} | {b['measured']:.4g} ± {b['stderr']:.2g} |"
        )
    lines += ["", "All points (exact / measured):", "",
              "| cost | k | param | " + " | ".join(ESTIMATORS) + " |",
              "|---|---|---|" + "---|" * len(ESTIMATORS)]  # fmt: skip
    for cost in ("square", "exp", "cos"):
        for k in ks:
            for p in ("mu", "sigma"):
                cells = []
                for name in ESTIMATORS:
                    r = next(r for r in rows if (r["cost"], r["k"], r["estimator"], r["param"])
                             == (cost, k, name, p))  # fmt: skip
                    cells.append(f"{r['exact']:.3g} / {r['measured']:.3g}")
                lines.append(f"| {cost} | {k:.2f} | {p} | " + " | ".join(cells) + " |")
    md = "\n".join(lines) + "\n"
    (args.out / "reproduce_mohamed.md").write_text(md)
    (args.out / "reproduce_mohamed.json").write_text(
        json.dumps({"n": args.n, "ks": ks, "seconds": seconds, "rows": rows}, indent=1)
    )
    plot(rows, ks, args.out / "reproduce_mohamed.png")
    print("\n".join(lines[: 14 + len(ESTIMATORS)]))
    print(f"wrote {args.out / 'reproduce_mohamed.md'} and .json, .png")
    return rows


def plot(rows, ks, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    titles = {"square": "(x - k)²", "exp": "exp(-k x²)", "cos": "cos(k x)"}
    for c, cost in enumerate(("square", "exp", "cos")):
        for r, p in enumerate(("mu", "sigma")):
            ax = axes[r][c]
            for j, name in enumerate(ESTIMATORS):
                key = (cost, name, p)
                sel = [x for x in rows if (x["cost"], x["estimator"], x["param"]) == key]
                ex = [max(x["exact"], 1e-12) for x in sel]
                me = [max(x["measured"], 1e-12) for x in sel]
                ax.semilogy(ks, ex, "-", color=f"C{j}", lw=1.2, label=f"{name}")
                ax.semilogy(ks, me, "o", color=f"C{j}", ms=3)
            ax.set_title(f"{titles[cost]}: ∂/∂{'μ' if p == 'mu' else 'σ'}")
            ax.set_xlabel("k")
            ax.set_ylim(bottom=1e-4)
            ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("variance (one sample)")
    axes[1][0].set_ylabel("variance (one sample)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Mohamed et al. 2020 §3, N(1, 1): lines exact (quadrature), dots measured")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
