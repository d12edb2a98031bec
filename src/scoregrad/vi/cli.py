"""``scoregrad vi ...``: fit each variational-inference model from the command line.

    scoregrad vi beta-bernoulli --baseline moving-average
    scoregrad vi normal-normal --estimator rao-blackwell
    scoregrad vi logistic --estimator score-delta --steps 5000
    scoregrad vi sbn --estimator disarm --data ../shared/data/binarized-mnist/binarized_mnist.npz
    scoregrad vi gmm --method score
    scoregrad vi categorical-vae --estimator unordered-set --steps 500
    scoregrad vi beta-bernoulli --resume runs/vi/beta-bernoulli-20261202-064000 --steps 6000

Every command writes a run folder (``--out``, default ``runs/vi/<model>-<time>``) with its
checkpoint, ``result.json`` and ``curves.png`` (ELBO and gradient-variance curves); ``--resume``
continues a run with its saved settings, ``--json PATH`` writes the results (``-``: stdout).
Run folders, resume and the common options: docs/runs.md. ``--checkpoint FILE`` (resume if the
file exists) is the old spelling of ``--out``/``--resume`` and still works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..app.cli import (
    ALLOW_CHANGES,
    FORCE,
    JSON,
    OUT,
    PROGRESS,
    RESUME,
    SEED,
    choose,
    explicit,
    finite,
    group,
    note,
    write_json,
)
from ..app.names import Names

__all__ = ["register", "app"]

app = group(
    "Black-box variational inference: fit models by score-function (and other) ELBO gradients."
)

CHECKPOINT = typer.Option(
    None, "--checkpoint", hidden=True, help="Deprecated: use --out / --resume."
)
PLOT = typer.Option(None, "--plot", help="Also write the ELBO curve here (PNG).")
# options the image models share
GRAD_VAR_EVERY = Annotated[int, typer.Option(min=0, help="probe gradient variance every k steps")]
TIME_BUDGET = Annotated[
    float | None, typer.Option(min=0, callback=finite, help="stop after this many seconds")
]
DEVICE = Annotated[str, typer.Option(help="cpu or cuda")]
LIST = Annotated[bool, typer.Option("--list", help="list estimators and exit")]


class _Run:
    """One command's run folder: a new one, a resumed one, or the old ``--checkpoint`` file.

    On resume, options the user did not type take the saved run's values (``keys`` maps a
    command-line option to the setting's name in the checkpoint), so only typed options are
    compared with the saved ones (by ``scoregrad.vi.fit``).
    """

    def __init__(self, ctx, name, *, out, resume, force, checkpoint, keys=None):
        from ..app.checkpoint import load_checkpoint, resolve_checkpoint
        from ..app.runs import RunFolder, claim_run_folder, default_run_folder

        self.ctx, self.name, self.keys = ctx, name, dict(keys or {})
        self.saved: dict = {}
        self.saved_changes: list = []
        self.folder = None
        if checkpoint is not None:
            note("--checkpoint FILE is deprecated; use --out FOLDER and --resume FOLDER.")
            self.checkpoint = Path(checkpoint)
            if self.checkpoint.exists():
                state = load_checkpoint(self.checkpoint)
                self.saved = state.get("config", {})
                self.saved_changes = state.get("changes", [])
        elif resume is not None:
            self.checkpoint = resolve_checkpoint(resume)
            state = load_checkpoint(self.checkpoint, written_by="a `scoregrad vi` run")
            self.saved = state.get("config", {})
            self.saved_changes = state.get("changes", [])
            self.folder = RunFolder(self.checkpoint.parent)
            if out is not None and Path(out).resolve() != self.folder.path.resolve():
                raise typer.BadParameter(
                    "a VI run continues in its own folder; drop --out, or copy the folder and "
                    "resume the copy.",
                    param_hint="--out",
                )
        else:
            target = out if out is not None else default_run_folder("vi", name)
            self.folder = claim_run_folder(target, app="vi", name=name, force=force)
            if self.folder.archived is not None:
                note(f"the run that was in {target} was moved to {self.folder.archived}.")
            self.checkpoint = self.folder.checkpoint

    def values(self, **given) -> dict:
        """The options to run with: typed ones as given, the others as saved (on resume)."""
        typed = explicit(self.ctx)
        for option in list(given):
            key = self.keys.get(option, option)
            if option not in typed and key in self.saved:
                given[option] = self.saved[key]
        if self.folder is not None:
            if self.saved:
                self.folder.update(status="running")
            else:
                self.folder.start(given, command=f"scoregrad vi {self.name}")
        return given

    def finish(self, rows: dict, history: dict, title: str, plot, json_path):
        from ..app.checkpoint import load_checkpoint
        from .training import plot_history

        changes = []
        if self.checkpoint.exists():  # settings changed on resumes (--allow-changes)
            changes = load_checkpoint(self.checkpoint).get("changes", [])
            for c in changes[-1:]:
                note(
                    f"resumed at step {c['step']} with changed settings: {', '.join(c['options'])}."
                )
        if self.folder is not None:
            write_json(self.folder / "result.json", rows)
            plot_history(history, self.folder / "curves.png", title=title)
            self.folder.update(
                status="finished", progress=f"{rows.get('steps', '')} steps", changes=changes
            )
        if plot is not None:
            plot_history(history, plot, title=title)
        _emit(rows, json_path, title)
        if self.folder is not None and str(json_path) != "-":
            typer.echo(f"run folder: {self.folder.path}")

    def interrupted(self) -> None:
        if self.folder is not None and (self.folder / "run.json").exists():
            self.folder.update(status="interrupted")


def _emit(rows: dict, json_path, title: str) -> None:
    write_json(json_path, rows)
    if str(json_path) == "-":
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    t.add_column("quantity")
    t.add_column("value", justify="right")
    for k, v in rows.items():
        t.add_row(k, f"{v:.6g}" if isinstance(v, float) else str(v))
    Console().print(t)


def _guarded(run: _Run, fn):
    try:
        return fn()
    except BaseException:
        run.interrupted()
        raise


BB_BASELINES = Names("baseline", ("none", "moving-average", "loo"), {"ma": "moving-average"})


@app.command("beta-bernoulli")
def beta_bernoulli(
    ctx: typer.Context,
    baseline: str = typer.Option("moving-average", help="none | moving-average | loo"),
    samples: int = typer.Option(1, min=1, help="samples of z per step (loo needs >= 2)"),
    steps: int = typer.Option(3000, min=1, help="optimiser steps"),
    lr: float = typer.Option(0.01, min=0, callback=finite, help="Adam learning rate"),
    schedule: str = typer.Option("cosine", help="constant | cosine | linear | exp:<gamma>"),
    seed: SEED = 0,
    out: OUT = None,
    resume: RESUME = None,
    force: FORCE = False,
    allow_changes: ALLOW_CHANGES = False,
    checkpoint: Path | None = CHECKPOINT,
    plot: Path | None = PLOT,
    json_path: JSON = None,
    progress: PROGRESS = True,
):
    """Beta(10,10) prior, 6 heads / 4 tails: fit a Beta guide by the score function; compare
    with the exact posterior Beta(16, 14)."""
    from .models.beta_bernoulli import fit_beta_bernoulli

    run = _Run(ctx, "beta-bernoulli", out=out, resume=resume, force=force, checkpoint=checkpoint,
               keys={"samples": "n"})  # fmt: skip
    v = run.values(baseline=choose(BB_BASELINES, baseline, "--baseline"),
                   samples=samples, steps=steps, lr=lr, schedule=schedule, seed=seed)  # fmt: skip
    r = _guarded(run, lambda: fit_beta_bernoulli(
        v["baseline"], n=v["samples"], steps=v["steps"], lr=v["lr"], schedule=v["schedule"],
        seed=v["seed"], checkpoint=run.checkpoint, progress=progress, allow_changes=allow_changes,
    ))  # fmt: skip
    rows = {
        "guide a": r.a,
        "guide b": r.b,
        "exact a": r.exact_a,
        "exact b": r.exact_b,
        "|a - exact|": abs(r.a - r.exact_a),
        "|b - exact|": abs(r.b - r.exact_b),
        "first step within 0.8": r.converged_at if r.converged_at is not None else "never",
        "steps": r.steps,
    }
    run.finish(rows, r.history, f"Beta-Bernoulli, baseline {v['baseline']}", plot, json_path)


NN_ESTIMATORS = Names("estimator", ("rao-blackwell", "score-loo", "pathwise"))


@app.command("normal-normal")
def normal_normal(
    ctx: typer.Context,
    estimator: str = typer.Option("rao-blackwell", help="rao-blackwell | score-loo | pathwise"),
    samples: int = typer.Option(16, min=1, help="samples of z per step"),
    steps: int = typer.Option(1500, min=1, help="optimiser steps"),
    lr: float = typer.Option(0.05, min=0, callback=finite, help="Adam learning rate"),
    seed: SEED = 0,
    out: OUT = None,
    resume: RESUME = None,
    force: FORCE = False,
    allow_changes: ALLOW_CHANGES = False,
    checkpoint: Path | None = CHECKPOINT,
    plot: Path | None = PLOT,
    json_path: JSON = None,
    progress: PROGRESS = True,
):
    """Conjugate Normal-Normal model: the guide should match the exact Normal posterior and the
    ELBO reach log p(x)."""
    from ..baselines import LeaveOneOut
    from ..estimators.score_function import ScoreFunction
    from .elbo import PathwiseELBO, RaoBlackwellELBO, ScoreFunctionELBO
    from .guides import MeanFieldNormal
    from .models.normal_normal import NormalNormal
    from .training import fit

    table = {
        "rao-blackwell": lambda: RaoBlackwellELBO(),
        "score-loo": lambda: ScoreFunctionELBO(ScoreFunction(LeaveOneOut())),
        "pathwise": lambda: PathwiseELBO(),
    }
    run = _Run(ctx, "normal-normal", out=out, resume=resume, force=force, checkpoint=checkpoint,
               keys={"samples": "n"})  # fmt: skip
    v = run.values(estimator=choose(NN_ESTIMATORS, estimator, "--estimator"),
                   samples=samples, steps=steps, lr=lr, seed=seed)  # fmt: skip
    model = NormalNormal()
    guide = MeanFieldNormal(1)
    est = table[v["estimator"]]()
    r = _guarded(run, lambda: fit(
        lambda s: est(model, guide, v["samples"]), guide, v["steps"], lr=v["lr"],
        schedule="cosine", stateful=[est], seed=v["seed"], checkpoint=run.checkpoint,
        progress=progress, allow_changes=allow_changes,
        config={"model": "normal-normal", "estimator": v["estimator"], "n": v["samples"]},
    ))  # fmt: skip
    post = model.posterior()
    rows = {
        "guide loc": float(guide.loc[0].detach()),
        "exact loc": float(post.loc),
        "guide scale": float(guide.log_scale[0].detach().exp()),
        "exact scale": float(post.scale),
        "final ELBO": r.final_elbo,
        "log evidence": model.log_evidence(),
        "steps": r.steps,
    }
    run.finish(rows, r.history, f"Normal-Normal, {v['estimator']}", plot, json_path)


def _logistic_names() -> Names:
    from .models.logistic import ESTIMATORS

    return Names("estimator", list(ESTIMATORS))


@app.command("logistic")
def logistic(
    ctx: typer.Context,
    estimator: str = typer.Option(
        "score-delta", help="score | score-loo | score-rb-cv | score-cv | score-delta | pathwise"
    ),
    steps: int = typer.Option(5000, min=1, help="optimiser steps"),
    samples: int = typer.Option(50, min=1, help="samples of the weights per step"),
    batch_size: int = typer.Option(32, min=1, help="data points per minibatch"),
    lr: float = typer.Option(1e-3, min=0, callback=finite, help="learning rate"),
    optimizer: str = typer.Option("sgd", help="sgd | adam"),
    schedule: str = typer.Option("cosine", help="constant | cosine | linear | exp:<gamma>"),
    grad_var_every: int = typer.Option(
        250, min=0, help="probe gradient variance every k steps (0: off)"
    ),
    seed: SEED = 0,
    out: OUT = None,
    resume: RESUME = None,
    force: FORCE = False,
    allow_changes: ALLOW_CHANGES = False,
    checkpoint: Path | None = CHECKPOINT,
    plot: Path | None = PLOT,
    json_path: JSON = None,
    progress: PROGRESS = True,
):
    """Bayesian logistic regression on breast cancer (Mohamed et al. 2020 §8 set-up)."""
    from .models.logistic import run as fit_logistic

    name = choose(_logistic_names(), estimator, "--estimator")
    opt = choose(Names("optimizer", ("sgd", "adam")), optimizer, "--optimizer")
    run = _Run(ctx, "logistic", out=out, resume=resume, force=force, checkpoint=checkpoint,
               keys={"samples": "n"})  # fmt: skip
    v = run.values(estimator=name, steps=steps, samples=samples, batch_size=batch_size, lr=lr,
                   optimizer=opt, schedule=schedule, seed=seed)  # fmt: skip
    r = _guarded(run, lambda: fit_logistic(
        v["estimator"], steps=v["steps"], n=v["samples"], batch_size=v["batch_size"], lr=v["lr"],
        optimizer=v["optimizer"], schedule=v["schedule"], seed=v["seed"],
        grad_var_every=grad_var_every, checkpoint=run.checkpoint, progress=progress,
        allow_changes=allow_changes,
    ))  # fmt: skip
    h = r.pop("history")
    if h["grad_var"]:
        import statistics

        r["grad_var_median"] = statistics.median(h["grad_var"])
    run.finish(r, h, f"logistic regression, {v['estimator']}", plot, json_path)


@app.command("sbn")
def sbn(
    ctx: typer.Context,
    estimator: str = typer.Option("reinforce-loo", help="see `scoregrad vi sbn --list`"),
    data: Path | None = typer.Option(
        None, help="binarised MNIST .npz (default: binarised scikit-learn digits)"
    ),
    nonlinear: bool = typer.Option(False, help="two tanh layers of 200 in encoder and decoder"),
    steps: int = typer.Option(2000, min=1, help="optimiser steps"),
    batch_size: int = typer.Option(50, min=1, help="images per minibatch"),
    lr: float = typer.Option(1e-3, min=0, callback=finite, help="Adam learning rate"),
    latents: int = typer.Option(200, min=1, help="Bernoulli latent units"),
    iw_samples: int = typer.Option(
        1000, min=0, help="samples of the importance-weighted test bound"
    ),
    test_subset: int = typer.Option(
        0, min=0, help="evaluate on k test images drawn at random, fixed seed (0: all)"
    ),
    grad_var_every: GRAD_VAR_EVERY = 0,
    time_budget: TIME_BUDGET = None,
    seed: SEED = 0,
    device: DEVICE = "cpu",
    out: OUT = None,
    resume: RESUME = None,
    force: FORCE = False,
    allow_changes: ALLOW_CHANGES = False,
    checkpoint: Path | None = CHECKPOINT,
    plot: Path | None = PLOT,
    list_estimators: LIST = False,
    json_path: JSON = None,
    progress: PROGRESS = True,
    layers: int = typer.Option(
        1, min=1, max=2, help="1: binary VAE; 2: two-layer linear SBN on the graph API"
    ),
):
    """Sigmoid belief net / binary VAE with Bernoulli latents on binarised images."""
    from .data import load_dataset

    layers = _as_saved(ctx, resume, "layers", layers)
    if layers == 2:
        from .models.sbn2 import ESTIMATORS2 as table
    else:
        from .models.sbn import ESTIMATORS as table
        from .models.sbn import _available
    if list_estimators:
        for k in table:
            typer.echo(f"{k}{'' if layers == 2 or _available(k) else '  (not installed)'}")
        return
    if layers == 2 and nonlinear:
        raise typer.BadParameter(
            "the two-layer SBN is linear; drop --nonlinear.", param_hint="--nonlinear"
        )
    name = choose(Names("estimator", list(table)), estimator, "--estimator")
    d = load_dataset(data)  # a missing or malformed file fails before a run folder is made
    run = _Run(ctx, "sbn", out=out, resume=resume, force=force, checkpoint=checkpoint,
               keys={"latents": "z_dim" if layers == 1 else "hidden"})  # fmt: skip
    v = run.values(estimator=name, nonlinear=nonlinear, steps=steps, batch_size=batch_size,
                   lr=lr, latents=latents, seed=seed, layers=layers)  # fmt: skip
    common = dict(steps=v["steps"], batch_size=v["batch_size"], lr=v["lr"], seed=v["seed"],
                  checkpoint=run.checkpoint, progress=progress, time_budget=time_budget,
                  device=device, allow_changes=allow_changes)  # fmt: skip
    if layers == 2:
        rows, h = _guarded(run, lambda: _sbn2(d, v, common, test_subset))
    else:
        rows, h = _guarded(
            run, lambda: _sbn1(d, v, common, test_subset, iw_samples, grad_var_every)
        )
    run.finish(rows, h, f"{d.name}, {v['estimator']}", plot, json_path)


def _as_saved(ctx, resume, option: str, value):
    """``value``, or the saved run's setting where ``--resume`` is given and the option is not."""
    if resume is None or option in explicit(ctx):
        return value
    from ..app.checkpoint import load_checkpoint, resolve_checkpoint

    state = load_checkpoint(resolve_checkpoint(resume), written_by="a `scoregrad vi` run")
    return state.get("config", {}).get(option, value)


def _sbn1(d, v, common, test_subset, iw_samples, grad_var_every):
    from .data import subset
    from .models.sbn import evaluate, train

    r = train(d, v["estimator"], nonlinear=v["nonlinear"], z_dim=v["latents"],
              grad_var_every=grad_var_every, **common)  # fmt: skip
    xt = subset(d.test, test_subset, seed=2)
    ev = evaluate(r["model"], xt.to(common["device"]), iw_samples=iw_samples)
    h = r["history"]
    rows = {
        "data": d.name,
        "model": "nonlinear" if v["nonlinear"] else "linear",
        "estimator": v["estimator"],
        "steps": r["steps"],
        "steps/s": r["steps_per_second"],
        "train ELBO (last 10% of steps)": r["train_elbo_last10pct"],
        f"test ELBO ({xt.shape[0]} images)": ev["elbo"],
    }
    if iw_samples:
        rows[f"test IW bound, k={iw_samples}"] = ev["iw_bound"]
    if h["grad_var"]:
        rows["encoder grad variance (median)"] = sorted(h["grad_var"])[len(h["grad_var"]) // 2]
    return rows, h


def _sbn2(d, v, common, test_subset):
    """`scoregrad vi sbn --layers 2`: the two-layer linear SBN, one estimator per layer."""
    from .data import subset
    from .models.sbn2 import evaluate2, train2

    r = train2(d, v["estimator"], hidden=v["latents"], **common)
    xt = subset(d.test, test_subset, seed=2)
    ev = evaluate2(r["model"], xt.to(common["device"]))
    rows = {
        "data": d.name,
        "model": f"two-layer linear SBN {d.dim}-{v['latents']}-{v['latents']}",
        "estimator": v["estimator"],
        "steps": r["steps"],
        "seconds": r["seconds"],
        "train ELBO (last 10% of steps)": r["train_elbo_last10pct"],
        f"test ELBO ({xt.shape[0]} images)": ev["elbo"],
        "layer 1 grad variance": r["grad_variance"]["layer1"],
        "layer 2 grad variance": r["grad_variance"]["layer2"],
    }
    return rows, r["history"]


@app.command("categorical-vae")
def categorical_vae(
    ctx: typer.Context,
    estimator: str = typer.Option("rb-reinforce", help="see `--list`"),
    data: Path | None = typer.Option(None, help="binarised MNIST .npz (default: digits)"),
    steps: int = typer.Option(2000, min=1, help="optimiser steps"),
    batch_size: int = typer.Option(50, min=1, help="images per minibatch"),
    lr: float = typer.Option(1e-3, min=0, callback=finite, help="Adam learning rate"),
    latents: int = typer.Option(20, min=1, help="categorical latent variables"),
    classes: int = typer.Option(10, min=2, help="classes of each latent"),
    budget: int = typer.Option(40, min=1, help="evaluations of the log joint per image and step"),
    iw_samples: int = typer.Option(100, min=0, help="samples of the importance-weighted bound"),
    test_subset: int = typer.Option(0, min=0, help="evaluate on k test images (0: all)"),
    grad_var_every: GRAD_VAR_EVERY = 0,
    time_budget: TIME_BUDGET = None,
    seed: SEED = 0,
    device: DEVICE = "cpu",
    out: OUT = None,
    resume: RESUME = None,
    force: FORCE = False,
    allow_changes: ALLOW_CHANGES = False,
    plot: Path | None = PLOT,
    list_estimators: LIST = False,
    json_path: JSON = None,
    progress: PROGRESS = True,
):
    """Discrete VAE with categorical latents (default 20 of 10 classes) on binarised images."""
    from .data import load_dataset, subset
    from .models.categorical_vae import ESTIMATORS, evaluate, make_estimator, train

    if list_estimators:
        typer.echo("\n".join(ESTIMATORS))
        return
    name = choose(Names("estimator", list(ESTIMATORS)), estimator, "--estimator")
    d = load_dataset(data)  # a missing or malformed file fails before a run folder is made
    run = _Run(ctx, "categorical-vae", out=out, resume=resume, force=force, checkpoint=None)
    v = run.values(estimator=name, steps=steps, batch_size=batch_size, lr=lr, latents=latents,
                   classes=classes, budget=budget, seed=seed)  # fmt: skip

    def go():
        r = train(d, v["estimator"], steps=v["steps"], batch_size=v["batch_size"], lr=v["lr"],
                  latents=v["latents"], classes=v["classes"], budget=v["budget"],
                  seed=v["seed"], grad_var_every=grad_var_every, checkpoint=run.checkpoint,
                  progress=progress, time_budget=time_budget, device=device,
                  allow_changes=allow_changes)  # fmt: skip
        xt = subset(d.test, test_subset, seed=2)
        return r, xt, evaluate(r["model"], xt.to(device), iw_samples=iw_samples)

    r, xt, ev = _guarded(run, go)
    h = r["history"]
    rows = {
        "data": d.name,
        "estimator": v["estimator"],
        "biased": bool(make_estimator(v["estimator"])[0].estimator.biased),
        "evals per image and step": r["evals_per_image"],
        "steps": r["steps"],
        "steps/s": r["steps_per_second"],
        "train ELBO (last 10% of steps)": r["train_elbo_last10pct"],
        f"test ELBO ({xt.shape[0]} images)": ev["elbo"],
    }
    if iw_samples:
        rows[f"test IW bound, k={iw_samples}"] = ev["iw_bound"]
    if h.get("grad_var"):
        rows["encoder grad variance (median)"] = sorted(h["grad_var"])[len(h["grad_var"]) // 2]
    run.finish(rows, h, f"categorical VAE, {d.name}, {v['estimator']}", plot, json_path)


@app.command("gmm")
def gmm(
    ctx: typer.Context,
    method: str = typer.Option(
        "score",
        help="score (graph, LOO per assignment) | enumerate (graph) | rao-blackwell | exact",
    ),
    bayesian: bool = typer.Option(False, help="the means as latents too, with a Normal guide"),
    steps: int = typer.Option(1500, min=1, help="optimiser steps"),
    samples: int = typer.Option(8, min=1, help="samples of the assignments per step (score)"),
    lr: float = typer.Option(0.05, min=0, callback=finite, help="Adam learning rate"),
    n_data: int = typer.Option(60, min=1, help="synthetic points from 3 clusters at -4, 0, 4"),
    seed: SEED = 0,
    out: OUT = None,
    resume: RESUME = None,
    force: FORCE = False,
    allow_changes: ALLOW_CHANGES = False,
    checkpoint: Path | None = CHECKPOINT,
    plot: Path | None = PLOT,
    json_path: JSON = None,
    progress: PROGRESS = True,
):
    """Gaussian mixture with discrete assignments: score-function VI vs exact enumeration."""
    from .models.gmm import fit_gmm

    methods = ("score", "enumerate", "rao-blackwell", "exact")
    name = choose(Names("method", methods), method, "--method")
    run = _Run(ctx, "gmm", out=out, resume=resume, force=force, checkpoint=checkpoint,
               keys={"samples": "n"})  # fmt: skip
    v = run.values(method=name, steps=steps, samples=samples, lr=lr, n_data=n_data, seed=seed)
    r = _guarded(run, lambda: fit_gmm(
        v["method"], steps=v["steps"], n_samples=v["samples"], lr=v["lr"], seed=v["seed"],
        n_data=v["n_data"], progress=progress, checkpoint=run.checkpoint,
        allow_changes=allow_changes, bayesian=bayesian,
    ))  # fmt: skip
    h = r.pop("history")
    r["means"] = ", ".join(f"{m:.4f}" for m in r["means"])
    r["steps"] = len(h["elbo"])
    run.finish(r, h, f"Gaussian mixture, {v['method']}", plot, json_path)


def register(root: typer.Typer) -> None:
    """Add the ``vi`` group to the ``scoregrad`` command."""
    root.add_typer(app, name="vi")
