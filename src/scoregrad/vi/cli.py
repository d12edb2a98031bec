"""``scoregrad vi ...``: fit each variational-inference model from the command line.

    scoregrad vi beta-bernoulli --baseline moving-average
    scoregrad vi normal-normal --estimator rao-blackwell
    scoregrad vi logistic --estimator score-delta --steps 5000
    scoregrad vi sbn --estimator disarm --data ../shared/data/binarized-mnist/binarized_mnist.npz
    scoregrad vi gmm --method score

Every command accepts ``--checkpoint PATH`` (resume by rerunning the same command) and
``--plot PATH`` (ELBO and gradient-variance curves as PNG), and prints its results as a table
(``--json`` for machine-readable output).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

__all__ = ["register", "app"]

app = typer.Typer(
    help="Black-box variational inference: fit models by score-function (and other) ELBO "
    "gradients.",
    no_args_is_help=True,
)


def _emit(rows: dict, as_json: bool, title: str) -> None:
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    t.add_column("quantity")
    t.add_column("value", justify="right")
    for k, v in rows.items():
        t.add_row(k, f"{v:.6g}" if isinstance(v, float) else str(v))
    Console().print(t)


def _fail(e: Exception) -> None:
    typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


@app.command("beta-bernoulli")
def beta_bernoulli(
    baseline: str = typer.Option("moving-average", help="none | moving-average | loo"),
    samples: int = typer.Option(1, help="samples of z per step (loo needs >= 2)"),
    steps: int = typer.Option(3000, help="optimiser steps"),
    lr: float = typer.Option(0.01, help="Adam learning rate on the log-concentrations"),
    schedule: str = typer.Option("cosine", help="constant | cosine | linear | exp:<gamma>"),
    seed: int = typer.Option(0),
    checkpoint: Path | None = typer.Option(None, help="checkpoint file (resumes if present)"),
    plot: Path | None = typer.Option(None, help="write the ELBO curve here (PNG)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
    progress: bool = typer.Option(True, help="show a progress bar"),
):
    """Beta(10,10) prior, 6 heads / 4 tails: fit a Beta guide by the score function; compare
    with the exact posterior Beta(16, 14)."""
    from ..errors import ScoregradError
    from .fit import plot_history
    from .models.beta_bernoulli import fit_beta_bernoulli

    try:
        r = fit_beta_bernoulli(
            baseline,
            n=samples,
            steps=steps,
            lr=lr,
            schedule=schedule,
            seed=seed,
            checkpoint=checkpoint,
            progress=progress,
        )
    except (ScoregradError, ValueError) as e:
        _fail(e)
    if plot is not None:
        plot_history(r.history, plot, title=f"Beta-Bernoulli, baseline {baseline}")
    _emit(
        {
            "guide a": r.a,
            "guide b": r.b,
            "exact a": r.exact_a,
            "exact b": r.exact_b,
            "|a - exact|": abs(r.a - r.exact_a),
            "|b - exact|": abs(r.b - r.exact_b),
            "first step within 0.8": r.converged_at if r.converged_at is not None else "never",
            "steps": r.steps,
        },
        as_json,
        "Beta-Bernoulli",
    )


@app.command("normal-normal")
def normal_normal(
    estimator: str = typer.Option("rao-blackwell", help="rao-blackwell | score-loo | pathwise"),
    samples: int = typer.Option(16),
    steps: int = typer.Option(1500),
    lr: float = typer.Option(0.05),
    seed: int = typer.Option(0),
    checkpoint: Path | None = typer.Option(None),
    plot: Path | None = typer.Option(None),
    as_json: bool = typer.Option(False, "--json"),
    progress: bool = typer.Option(True),
):
    """Conjugate Normal-Normal model: the guide should match the exact Normal posterior and the
    ELBO reach log p(x)."""
    from ..baselines import LeaveOneOut
    from ..errors import ScoregradError
    from ..estimators.score_function import ScoreFunction
    from .elbo import PathwiseELBO, RaoBlackwellELBO, ScoreFunctionELBO
    from .fit import fit, plot_history
    from .guides import MeanFieldNormal
    from .models.normal_normal import NormalNormal

    table = {
        "rao-blackwell": lambda: RaoBlackwellELBO(),
        "score-loo": lambda: ScoreFunctionELBO(ScoreFunction(LeaveOneOut())),
        "pathwise": lambda: PathwiseELBO(),
    }
    if estimator not in table:
        _fail(ValueError(f"unknown estimator {estimator!r}; use one of {sorted(table)}"))
    model = NormalNormal()
    guide = MeanFieldNormal(1)
    est = table[estimator]()
    try:
        r = fit(
            lambda s: est(model, guide, samples),
            guide,
            steps,
            lr=lr,
            schedule="cosine",
            stateful=[est],
            seed=seed,
            checkpoint=checkpoint,
            progress=progress,
        )
    except ScoregradError as e:
        _fail(e)
    if plot is not None:
        plot_history(r.history, plot, title=f"Normal-Normal, {estimator}")
    post = model.posterior()
    _emit(
        {
            "guide loc": float(guide.loc[0].detach()),
            "exact loc": float(post.loc),
            "guide scale": float(guide.log_scale[0].detach().exp()),
            "exact scale": float(post.scale),
            "final ELBO": r.final_elbo,
            "log evidence": model.log_evidence(),
        },
        as_json,
        "Normal-Normal",
    )


@app.command("logistic")
def logistic(
    estimator: str = typer.Option(
        "score-delta", help="score | score-loo | score-rb-cv | score-cv | score-delta | pathwise"
    ),
    steps: int = typer.Option(5000),
    samples: int = typer.Option(50),
    batch_size: int = typer.Option(32),
    lr: float = typer.Option(1e-3),
    optimizer: str = typer.Option("sgd", help="sgd | adam"),
    schedule: str = typer.Option("cosine"),
    grad_var_every: int = typer.Option(250, help="probe gradient variance every k steps (0: off)"),
    seed: int = typer.Option(0),
    checkpoint: Path | None = typer.Option(None),
    plot: Path | None = typer.Option(None),
    as_json: bool = typer.Option(False, "--json"),
    progress: bool = typer.Option(True),
):
    """Bayesian logistic regression on breast cancer (Mohamed et al. 2020 §8 set-up)."""
    from ..errors import ScoregradError
    from .fit import plot_history
    from .models.logistic import run

    try:
        r = run(
            estimator,
            steps=steps,
            n=samples,
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer,
            schedule=schedule,
            seed=seed,
            grad_var_every=grad_var_every,
            checkpoint=checkpoint,
            progress=progress,
        )
    except (ScoregradError, ValueError) as e:
        _fail(e)
    h = r.pop("history")
    if plot is not None:
        plot_history(h, plot, title=f"logistic regression, {estimator}")
    if h["grad_var"]:
        import statistics

        r["grad_var_median"] = statistics.median(h["grad_var"])
    _emit(r, as_json, "Bayesian logistic regression (breast cancer)")


@app.command("sbn")
def sbn(
    estimator: str = typer.Option("reinforce-loo", help="see `scoregrad vi sbn --list`"),
    data: Path | None = typer.Option(
        None, help="binarised MNIST .npz (default: binarised scikit-learn digits)"
    ),
    nonlinear: bool = typer.Option(False, help="two tanh layers of 200 in encoder and decoder"),
    steps: int = typer.Option(2000),
    batch_size: int = typer.Option(50),
    lr: float = typer.Option(1e-3, help="Adam learning rate"),
    latents: int = typer.Option(200),
    iw_samples: int = typer.Option(1000, help="samples of the importance-weighted test bound"),
    test_subset: int = typer.Option(
        0, help="evaluate on k test images drawn at random, fixed seed (0: all)"
    ),
    grad_var_every: int = typer.Option(0),
    time_budget: float | None = typer.Option(None, help="stop after this many seconds"),
    seed: int = typer.Option(0),
    device: str = typer.Option("cpu"),
    checkpoint: Path | None = typer.Option(None),
    plot: Path | None = typer.Option(None),
    list_estimators: bool = typer.Option(False, "--list", help="list estimators and exit"),
    as_json: bool = typer.Option(False, "--json"),
    progress: bool = typer.Option(True),
    layers: int = typer.Option(
        1, help="stochastic layers: 1 (binary VAE) or 2 (two-layer linear SBN on the graph API)"
    ),
):
    """Sigmoid belief net / binary VAE with Bernoulli latents on binarised images."""
    from ..errors import ScoregradError
    from .data import load_dataset, subset
    from .fit import plot_history
    from .models.sbn import ESTIMATORS, _available, evaluate, train

    if layers not in (1, 2):
        _fail(ScoregradError(f"--layers must be 1 or 2, got {layers}."))
    if layers == 2:
        return _sbn2(
            estimator, data, steps, batch_size, lr, latents, test_subset, time_budget, seed,
            device, checkpoint, list_estimators, as_json, progress,
        )  # fmt: skip
    if list_estimators:
        for k in ESTIMATORS:
            typer.echo(f"{k}{'' if _available(k) else '  (not installed)'}")
        return
    try:
        d = load_dataset(data)
        r = train(
            d,
            estimator,
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            nonlinear=nonlinear,
            z_dim=latents,
            seed=seed,
            grad_var_every=grad_var_every,
            checkpoint=checkpoint,
            progress=progress,
            time_budget=time_budget,
            device=device,
        )
        xt = subset(d.test, test_subset, seed=2)
        ev = evaluate(r["model"], xt.to(device), iw_samples=iw_samples)
    except (ScoregradError, ValueError) as e:
        _fail(e)
    h = r["history"]
    if plot is not None:
        plot_history(h, plot, title=f"{d.name}, {estimator}")
    out = {
        "data": d.name,
        "model": "nonlinear" if nonlinear else "linear",
        "estimator": estimator,
        "steps": r["steps"],
        "steps/s": r["steps_per_second"],
        "train ELBO (last 10% of steps)": r["train_elbo_last10pct"],
        f"test ELBO ({xt.shape[0]} images)": ev["elbo"],
    }
    if iw_samples:
        out[f"test IW bound, k={iw_samples}"] = ev["iw_bound"]
    if h["grad_var"]:
        out["encoder grad variance (median)"] = sorted(h["grad_var"])[len(h["grad_var"]) // 2]
    _emit(out, as_json, "binary VAE / sigmoid belief net")


def _sbn2(estimator, data, steps, batch_size, lr, latents, test_subset, time_budget, seed,
          device, checkpoint, list_estimators, as_json, progress):  # fmt: skip
    """`scoregrad vi sbn --layers 2`: the two-layer linear SBN, one estimator per layer."""
    from ..errors import ScoregradError
    from .data import load_dataset, subset
    from .models.sbn2 import ESTIMATORS2, evaluate2, train2

    if list_estimators:
        for k in ESTIMATORS2:
            typer.echo(k)
        return
    try:
        d = load_dataset(data)
        r = train2(
            d, estimator, steps=steps, batch_size=batch_size, lr=lr, hidden=latents, seed=seed,
            checkpoint=checkpoint, progress=progress, time_budget=time_budget, device=device,
        )  # fmt: skip
        xt = subset(d.test, test_subset, seed=2)
        ev = evaluate2(r["model"], xt.to(device))
    except (ScoregradError, ValueError) as e:
        _fail(e)
    out = {
        "data": d.name,
        "model": f"two-layer linear SBN {d.dim}-{latents}-{latents}",
        "estimator": estimator,
        "steps": r["steps"],
        "seconds": r["seconds"],
        "train ELBO (last 10% of steps)": r["train_elbo_last10pct"],
        f"test ELBO ({xt.shape[0]} images)": ev["elbo"],
        "layer 1 grad variance": r["grad_variance"]["layer1"],
        "layer 2 grad variance": r["grad_variance"]["layer2"],
    }
    _emit(out, as_json, "two-layer sigmoid belief net")


@app.command("gmm")
def gmm(
    method: str = typer.Option(
        "score",
        help="score (graph, LOO per assignment) | enumerate (graph) | rao-blackwell | exact",
    ),
    bayesian: bool = typer.Option(False, help="means as latents too, with a Normal guide"),
    steps: int = typer.Option(1500),
    samples: int = typer.Option(8, help="samples of the assignments per step (score)"),
    lr: float = typer.Option(0.05),
    n_data: int = typer.Option(60, help="synthetic points from 3 clusters at -4, 0, 4"),
    seed: int = typer.Option(0),
    checkpoint: Path | None = typer.Option(None),
    plot: Path | None = typer.Option(None),
    as_json: bool = typer.Option(False, "--json"),
    progress: bool = typer.Option(True),
):
    """Gaussian mixture with discrete assignments: score-function VI vs exact enumeration."""
    from ..errors import ScoregradError
    from .fit import plot_history
    from .models.gmm import fit_gmm

    try:
        r = fit_gmm(
            method,
            steps=steps,
            n_samples=samples,
            lr=lr,
            seed=seed,
            n_data=n_data,
            progress=progress,
            checkpoint=checkpoint,
            bayesian=bayesian,
        )
    except (ScoregradError, ValueError) as e:
        _fail(e)
    h = r.pop("history")
    if plot is not None:
        plot_history(h, plot, title=f"Gaussian mixture, {method}")
    r["means"] = ", ".join(f"{m:.4f}" for m in r["means"])
    _emit(r, as_json, "Gaussian mixture with discrete assignments")


def register(root: typer.Typer) -> None:
    """Add the ``vi`` group to the ``scoregrad`` command."""
    root.add_typer(app, name="vi")
