"""Bayesian logistic regression on breast cancer (Mohamed et al. 2020 §8): gradient variance
along training, final ELBO, test accuracy and log-likelihood per ELBO-gradient estimator.

Set-up: D = 31 (30 standardised features + bias), prior N(0, I), mean-field Gaussian guide,
batch 32, 50 samples per step, SGD lr 1e-3 with cosine decay, 5000 steps (all as in the paper).
All estimators run in this one process on the same minibatch sequence; the reference is the
pathwise estimator. Run:

    PYTHONPATH=src python benchmarks/vi_logistic.py [--steps 5000] [--device cpu]

Writes benchmarks/results/vi_logistic.{json,md} and docs/figures/vi_logistic.png.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

from scoregrad.errors import ScoregradError
from scoregrad.vi.models.logistic import ESTIMATORS, available, run
from scoregrad.vi.training import plot_comparison

ROOT = Path(__file__).resolve().parents[1]


def shared_trajectory_variance(args) -> dict:
    """Variance of every estimator at the same parameters: along the pathwise run's trajectory,
    every ``grad_var_every`` steps, ``grad_var_repeats`` draws each (same minibatch per step)."""
    from scoregrad.vi import MeanFieldNormal, PathwiseELBO, fit
    from scoregrad.vi.models.logistic import LogisticRegression, load_breast_cancer_split
    from scoregrad.vi.training import gradient_variance

    data = load_breast_cancer_split(seed=0)
    model = LogisticRegression(data, batch_size=args.batch_size, seed=args.seed)
    torch.set_default_dtype(torch.float64)
    guide = MeanFieldNormal(model.dim, init_scale=0.1)
    torch.set_default_dtype(torch.float32)
    names = [k for k in args.variance_estimators.split(",") if available(k)]
    ests = {k: ESTIMATORS[k]() for k in names}
    out = {k: [] for k in names}
    steps_logged = []
    params = list(guide.parameters())

    def probe(step, history):
        if step % args.grad_var_every:
            return
        steps_logged.append(step)
        for k, e in ests.items():
            v = gradient_variance(
                lambda s, e=e: e(model.minibatch(s), guide, args.samples),
                params,
                step,
                args.grad_var_repeats,
                [e],
                seed=args.seed,
            )
            out[k].append(v)

    pw = PathwiseELBO()
    fit(
        lambda s: pw(model.minibatch(s), guide, args.samples),
        guide,
        args.steps,
        optimizer="sgd",
        lr=args.lr,
        schedule="cosine",
        seed=args.seed,
        progress=False,
        callback=probe,
    )
    return {"steps": steps_logged, "variance": out}


def plot_shared(shared: dict, path: Path) -> None:
    """Gradient variance of every estimator at the same parameters (the pathwise trajectory)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for k, v in shared["variance"].items():
        if v:
            ax.semilogy(shared["steps"][: len(v)], v, label=k)
    ax.set_xlabel("step (pathwise training run)")
    ax.set_ylabel("gradient variance (mean over elements)")
    ax.set_title("Estimators probed at the same parameters")
    ax.legend(fontsize=7, ncol=2, loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--grad-var-every", type=int, default=250)
    ap.add_argument("--grad-var-repeats", type=int, default=20)
    ap.add_argument(
        "--estimators",
        default="score,score-loo,score-rb-cv,score-delta,measure-valued-uncoupled,pathwise",
        help="estimators trained for --steps each",
    )
    ap.add_argument(
        "--variance-estimators",
        default="score,score-loo,score-rb-cv,score-cv,score-delta,measure-valued,"
        "measure-valued-uncoupled,pathwise",
        help="estimators whose variance is probed along the shared (pathwise) trajectory",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--device",
        default="cpu",
        help="accepted for uniformity; this model is tiny and runs on the CPU",
    )
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "vi_logistic"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows, histories = [], {}
    for name in args.estimators.split(","):
        if name not in ESTIMATORS:
            sys.exit(f"unknown estimator {name!r}; choose from {sorted(ESTIMATORS)}")
        if not available(name):
            print(f"{name}: not available in this install, skipped", flush=True)
            continue
        try:
            r = run(
                name,
                steps=args.steps,
                n=args.samples,
                batch_size=args.batch_size,
                lr=args.lr,
                seed=args.seed,
                grad_var_every=args.grad_var_every,
                grad_var_repeats=args.grad_var_repeats,
                progress=False,
            )
        except ScoregradError as e:
            rows.append({"estimator": name, "diverged": str(e).split(";")[0]})
            print(f"{name}: diverged ({e})", flush=True)
            continue
        h = r.pop("history")
        histories[name] = h
        gv = h["grad_var"]
        r["grad_var_initial"] = gv[0]
        r["grad_var_median"] = float(torch.tensor(gv).median())
        r["grad_var_final"] = gv[-1]
        r["train_elbo_last10pct"] = float(
            sum(h["elbo"][-len(h["elbo"]) // 10 :]) / (len(h["elbo"]) // 10)
        )
        rows.append(r)
        print(
            f"{name:12s} ELBO {r['elbo']:9.2f} ± {r['elbo_stderr']:.2f}  acc {r['test_accuracy']:.4f}"
            f"  test LL {r['test_log_lik']:.4f}  var median {r['grad_var_median']:.3g}"
            f"  {r['steps_per_second']:.0f} steps/s",
            flush=True,
        )
    shared = shared_trajectory_variance(args)
    ok = {r["estimator"]: r for r in rows if "elbo" in r}
    ref = ok.get("pathwise")
    base = ok.get("score")
    sv = shared["variance"]
    med = {k: float(torch.tensor(v).median()) for k, v in sv.items() if v}
    for r in rows:
        k = r["estimator"]
        if k in med:
            r["shared_grad_var_median"] = med[k]
            if "score" in med:
                r["shared_reduction_vs_score"] = med["score"] / med[k]
    for r in ok.values():
        if ref is not None:
            r["elbo_minus_pathwise"] = r["elbo"] - ref["elbo"]
        if base is not None:
            r["variance_reduction_vs_score"] = base["grad_var_median"] / r["grad_var_median"]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {k: v for k, v in vars(args).items() if k != "out"}
    out.with_suffix(".json").write_text(
        json.dumps(
            {"config": meta, "results": rows, "histories": histories, "shared_trajectory": shared},
            indent=1,
        )
    )
    lines = [
        "| estimator | final ELBO (2000 draws) | ELBO − pathwise | test acc | test log-lik/pt "
        "| grad var, own run (median) | grad var, shared trajectory (median) "
        "| reduction vs score (shared) | steps/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        sh = f"{r['shared_grad_var_median']:.3g}" if "shared_grad_var_median" in r else ""
        red = r.get("shared_reduction_vs_score", math.nan)
        if "elbo" not in r:
            lines.append(f"| {r['estimator']} | diverged | | | | | {sh} | {red:.3g}x | |")
            continue
        lines.append(
            f"| {r['estimator']} | {r['elbo']:.2f} ± {r['elbo_stderr']:.2f} | "
            f"{r.get('elbo_minus_pathwise', math.nan):+.2f} | {r['test_accuracy']:.4f} | "
            f"{r['test_log_lik']:.4f} | {r['grad_var_median']:.3g} | {sh} | "
            f"{red:.3g}x | {r['steps_per_second']:.0f} |"
        )
    table = "\n".join(lines)
    lines2 = [
        "| estimator | grad var along the pathwise trajectory (median) | reduction vs score |",
        "|---|---|---|",
    ]
    for k, v in med.items():
        red2 = med["score"] / v if "score" in med else math.nan
        lines2.append(f"| {k} | {v:.3g} | {red2:.3g}x |")
    table += "\n\nVariance at shared parameters (every estimator probed at the same points):\n\n"
    table += "\n".join(lines2)
    out.with_suffix(".md").write_text(f"# vi_logistic\n\nconfig: {json.dumps(meta)}\n\n{table}\n")
    print(table)
    if histories:
        fig = ROOT / "docs" / "figures" / "vi_logistic.png"
        plot_comparison(
            histories,
            fig,
            title="Bayesian logistic regression, breast cancer",
            elbo_floor=min(r["elbo"] for r in ok.values()) - 60,
        )
        print(f"figure: {fig}")
    plot_shared(shared, ROOT / "docs" / "figures" / "vi_logistic_shared_variance.png")


if __name__ == "__main__":
    main()
