"""``scoregrad demo``: the variance-reduction toolbox side by side on a problem with a known gradient.

For each estimator it prints the estimate of ∇θ E[f], the exact gradient, the bias z-score
(estimate - exact)/stderr, the standard error, the variance per sample (n · stderr²) and the wall
time, then writes a PNG of the estimator's variance against the number of samples (into a fresh run
folder, ``runs/demo/<problem>-<time>/``, unless ``--out FILE`` names one; an existing file is
never written over, ``--force`` moves it aside).

    scoregrad demo                               # (x - 3)², x ~ N(1, 1)
    scoregrad demo --problem normal-cos --n 100000
"""

from __future__ import annotations

from pathlib import Path

from .. import baselines as B
from .. import control_variates as CV
from .. import sampling as S
from ..app.plotting import new_figure, save_figure
from ..estimate import estimate_grad
from ..estimators.score_function import ScoreFunction
from . import problems as P

#: the smallest n the demo runs (its variance curve starts at 64 samples)
MIN_N = 64  # (the command checks --n >= 64 without importing this module)


def demo_estimators() -> list[tuple[str, callable, int | None]]:
    """(label, factory, chunk size) — stateful baselines learn across chunks of one call."""
    return [
        ("plain score function", lambda: ScoreFunction(), None),
        ("constant baseline b=4", lambda: ScoreFunction(B.Constant(4.0)), None),
        ("moving-average baseline", lambda: ScoreFunction(B.MovingAverage(0.8)), 16),
        ("leave-one-out (RLOO)", lambda: ScoreFunction(B.LeaveOneOut()), None),
        (
            "learned baseline (NVIL)",
            lambda: ScoreFunction(B.Learned(lr=0.5, steps_per_update=10)),
            16,
        ),
        (
            "optimal score CV (LOO c)",
            lambda: ScoreFunction(control_variate=CV.ScoreControlVariate()),
            None,
        ),
        ("delta-method CV", lambda: ScoreFunction(control_variate=CV.DeltaMethod()), None),
        ("antithetic", lambda: ScoreFunction(sampler=S.Antithetic()), None),
        ("RQMC (Sobol, 16 reps)", lambda: ScoreFunction(sampler=S.QMC(replicates=16)), None),
    ]


def _estimate(problem: P.Problem, make, chunks: int | None, n: int, seed: int):
    """One estimate; stateful baselines get `chunks` chunks to learn across."""
    chunk = None if chunks is None else max(32, n // chunks)
    return estimate_grad(
        problem.f,
        problem.dist_fn,
        problem.params(),
        n=n,
        estimator=make(),
        seed=seed,
        chunk_size=chunk,
    )


def run_demo(problem: P.Problem, n: int, seed: int = 0):
    """One row per estimator: {estimator, seconds, params: {name: (estimate, exact, z, stderr,
    variance per sample)}} for the first element of each parameter."""
    _, exact = problem.exact()
    rows = []
    # warm-up: first calls pay one-off imports (torch.optim, autograd) that are not the estimator's
    for _, make, chunks in demo_estimators():
        _estimate(problem, make, chunks, 64, seed)
    for label, make, chunks in demo_estimators():
        est = _estimate(problem, make, chunks, n, seed)
        cols = {}
        for k in est.grad:
            g, se, ex = (t.flatten()[0] for t in (est.grad[k], est.stderr[k], exact[k]))
            exact_up_to_rounding = abs(float(g - ex)) <= 1e-9 * (1 + abs(float(ex)))
            z = 0.0 if exact_up_to_rounding else float((g - ex) / se)
            cols[k] = dict(
                estimate=float(g),
                exact=float(ex),
                z=z,
                stderr=float(se),
                var_per_sample=float(se**2 * n),
            )
        rows.append(dict(estimator=label, seconds=est.seconds, params=cols))
    return rows


def variance_curve(problem: P.Problem, ns: list[int], seed: int = 0):
    """{label: [stderr² of the first parameter at each n]}."""
    first = next(iter(problem.defaults))
    curves = {}
    for label, make, chunks in demo_estimators():
        vs = []
        for n in ns:
            est = _estimate(problem, make, chunks, n, seed + n)
            vs.append(float(est.stderr[first].flatten()[0] ** 2))
        curves[label] = vs
    return first, curves


def plot_variance(ns, curves, param, title, path: Path) -> Path:
    fig, ax = new_figure(figsize=(7.5, 5))
    for label, vs in curves.items():
        if max(vs) < 1e-20:  # exact for this f (e.g. a Taylor CV on a quadratic): nothing to draw
            ax.plot([], [], " ", label=f"{label}: variance 0 (exact), not drawn")
            continue
        pts = [(n, v) for n, v in zip(ns, vs) if v > 0]
        if pts:
            ax.loglog(*zip(*pts), marker="o", ms=3, label=label)
    ax.set_xlabel("number of samples n")
    ax.set_ylabel(f"variance of the estimate of ∂E[f]/∂{param}")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path, dpi=120)
