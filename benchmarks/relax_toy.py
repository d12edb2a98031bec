"""The RELAX toy (Grathwohl et al. 2018, "Backpropagation through the Void", figure 1):
f(b) = (b - t)², b ~ Bernoulli(σ(θ)), t = 0.499, starting from θ = 0.

1. Single-sample gradient variance at θ = 0, exact against measured: REINFORCE, leave-one-out
   with K = 2, ARM, DisARM (and RELAX/REBAR untrained, measured only).
2. Adam (lr 0.01) for 5000 steps with each estimator at equal evaluations of f per step (2, REBAR
   needs 3 per sample so it gets 1 sample = 3 evaluations and is compared at equal evaluations
   along the way), several seeds; the exact loss and the log-variance of the gradient (measured
   every 50 steps with 2000 extra samples, a learned control frozen for it) are plotted.

Writes benchmarks/results/relax_toy.{json,md,png}.

    PYTHONPATH=src python benchmarks/relax_toy.py                 # 5000 steps, 3 seeds
    PYTHONPATH=src python benchmarks/relax_toy.py --steps 500 --seeds 1
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

import scoregrad as sg
from scoregrad.diagnostics import plot_trajectory, trajectory
from scoregrad.problems import bernoulli_toy

RESULTS = Path(__file__).parent / "results"
T = 0.499


def exact_variances(t: float = T) -> dict[str, float]:
    g = 0.25 * (1 - 2 * t)
    return {
        "reinforce": 0.25 * 0.5 * ((1 - t) ** 4 + t**4) - g**2,
        "rloo_k2": (1 - 2 * t) ** 2 / 16,
        "arm": (1 - 2 * t) ** 2 / 48,
        "disarm": 0.0,
    }


def measured_variances(n: int, device: str) -> dict[str, tuple[float, float]]:
    prob = bernoulli_toy(t=T, logits=(0.0,))
    params = {k: v.to(device).detach().requires_grad_() for k, v in prob.params().items()}
    out = {}
    for name, est in [("reinforce", sg.ScoreFunction()), ("arm", sg.ARM()),
                      ("disarm", sg.DisARM()), ("relax (untrained)", sg.RELAX(train=False)),
                      ("rebar (untrained)", sg.REBAR(train=False))]:  # fmt: skip
        e = sg.estimate_grad(prob.f, prob.dist_fn, params, n, est, seed=1, return_per_sample=True)
        g = e.per_sample["logits"].reshape(-1).cpu()
        d2 = (g - g.mean()) ** 2
        out[name] = (float(d2.mean()), float(d2.std() / math.sqrt(len(g))))
    reps = torch.stack([
        sg.estimate_grad(prob.f, prob.dist_fn, params, 2, sg.RLOO(), seed=s).grad["logits"]
        for s in range(n // 20)
    ]).reshape(-1).cpu()  # fmt: skip
    d2 = (reps - reps.mean()) ** 2
    out["rloo_k2"] = (float(d2.mean()), float(d2.std() / math.sqrt(len(reps))))
    return out


def runs_for(budget: int):
    return {
        "reinforce": (sg.ScoreFunction(), budget),
        "rloo": (sg.RLOO(), budget),
        "arm": (sg.ARM(), budget // 2),
        "disarm": (sg.DisARM(), budget // 2),
        "relax": (sg.RELAX(), budget),
        "rebar": (sg.REBAR(), max(1, budget // 3)),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", type=int, default=2, help="evaluations of f per step")
    ap.add_argument("--n-variance", type=int, default=100_000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    exact = exact_variances()
    measured = measured_variances(args.n_variance, args.device)

    prob = bernoulli_toy(t=T, logits=(0.0,))
    params = {k: v.to(args.device) for k, v in prob.params().items()}
    budget_evals = args.budget * args.steps
    per_seed = []
    for seed in range(args.seeds):
        tr = trajectory(
            prob, runs_for(args.budget), steps=args.steps, lr=args.lr, seed=1000 * seed,
            record_every=50, variance_n=2000, params=params,
        )  # fmt: skip
        per_seed.append(tr)
        if seed == 0:
            plot_trajectory(tr, args.out / "relax_toy.png", by="evals",
                            title=f"RELAX toy, t={T}, Adam lr={args.lr}, seed 0")  # fmt: skip

    def loss_at_budget(rec):
        ok = [i for i, e in enumerate(rec["evals"]) if e <= budget_evals]
        return rec["loss"][ok[-1]]

    summary = {}
    for label in per_seed[0]:
        losses = [loss_at_budget(tr[label]) for tr in per_seed]
        var_end = [tr[label]["variance"][-1] for tr in per_seed]
        summary[label] = {
            "n_per_step": runs_for(args.budget)[label][1],
            "evals_per_step": per_seed[0][label]["evals"][0] // (per_seed[0][label]["step"][0] + 1),
            "loss_at_budget": losses,
            "loss_mean": float(np.mean(losses)),
            "final_theta": [tr[label]["params"]["logits"][0] for tr in per_seed],
            "log10_variance_end": [math.log10(v) if v > 0 else float("-inf") for v in var_end],
            "seconds": float(np.mean([tr[label]["seconds"] for tr in per_seed])),
        }
    seconds = time.perf_counter() - start
    ref = summary["reinforce"]["loss_mean"]
    checks = {k: summary[k]["loss_mean"] < ref for k in ("relax", "disarm")}
    lines = [
        f"# RELAX toy: f(b) = (b - {T})², θ₀ = 0",
        "",
        "## Single-sample gradient variance at θ = 0",
        "",
        f"| estimator | exact | measured (n = {args.n_variance}) |",
        "|---|---|---|",
    ]
    for name, (v, se) in measured.items():
        ex = exact.get(name)
        lines.append(f"| {name} | {'—' if ex is None else f'{ex:.6g}'} | {v:.4g} ± {se:.2g} |")
    lines += [
        "",
        f"## Adam, lr {args.lr}, {args.steps} steps, {args.budget} evaluations of f per step "
        f"({budget_evals} in all), {args.seeds} seeds",
        "",
        "Loss E[f] at equal evaluations (minimum possible t² = 0.249001; start 0.250001):",
        "",
        "| estimator | samples/step | evals/step | loss per seed | mean | final θ "
        "| log10 var end |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, s in summary.items():
        lines.append(
            f"| {label} | {s['n_per_step']} | {s['evals_per_step']} | "
            f"{', '.join(f'{x:.6f}' for x in s['loss_at_budget'])} | {s['loss_mean']:.6f} | "
            f"{', '.join(f'{x:.2f}' for x in s['final_theta'])} | "
            f"{', '.join(f'{x:.1f}' for x in s['log10_variance_end'])} |"
        )
    lines += ["", f"RELAX below REINFORCE: {checks['relax']}; DisARM below REINFORCE: "
              f"{checks['disarm']}. Total {seconds:.0f} s.", ""]  # fmt: skip
    md = "\n".join(lines)
    (args.out / "relax_toy.md").write_text(md)
    (args.out / "relax_toy.json").write_text(json.dumps({
        "t": T, "steps": args.steps, "lr": args.lr, "budget": args.budget,
        "exact_variance": exact, "measured_variance": measured, "summary": summary,
        "checks": checks, "seconds": seconds,
    }, indent=1, default=str))  # fmt: skip
    print(md)
    return summary, checks


if __name__ == "__main__":
    main()
