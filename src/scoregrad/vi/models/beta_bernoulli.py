"""Beta-Bernoulli: a coin's bias z with prior Beta(a₀, b₀) and observed tosses x_i ~ Bernoulli(z).

    p(z | x) = Beta(a₀ + Σx, b₀ + n - Σx)

With the defaults (prior Beta(10, 10), data six ones and four zeros) the exact posterior is
Beta(16, 14). A Beta guide fitted by the score-function ELBO should recover it; this is the
set-up of Pyro's SVI tutorial (part III), which counts the steps until both guide parameters
are within 0.8 of the exact ones, with and without a baseline.

>>> m = BetaBernoulli()
>>> m.posterior().concentration1, m.posterior().concentration0
(tensor(16.), tensor(14.))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributions as D
from torch.distributions import constraints

from ...app.names import Names
from ...baselines import LeaveOneOut, MovingAverage, NoBaseline
from ...estimators.score_function import ScoreFunction
from ..elbo import ScoreFunctionELBO, check_support
from ..guides import BetaGuide
from ..training import fit

__all__ = ["BetaBernoulli", "fit_beta_bernoulli", "steps_to_converge", "first_within"]


class BetaBernoulli:
    """The model: ``log_joint(z)`` for z of shape (n, 1) in (0, 1), ``posterior()`` exactly."""

    support = constraints.unit_interval

    def __init__(self, a0: float = 10.0, b0: float = 10.0, data: Sequence[int] | None = None):
        self.a0, self.b0 = float(a0), float(b0)
        self.data = torch.tensor([1.0] * 6 + [0.0] * 4 if data is None else list(data))
        self.heads = float(self.data.sum())
        self.tails = float(self.data.numel() - self.heads)

    def log_joint(self, z: torch.Tensor) -> torch.Tensor:
        """log Beta(z; a₀, b₀) + Σ_i log Bernoulli(x_i; z), one value per sample."""
        z = z.reshape(z.shape[0])
        prior = D.Beta(torch.tensor(self.a0), torch.tensor(self.b0)).log_prob(z)
        return prior + self.heads * torch.log(z) + self.tails * torch.log1p(-z)

    def posterior(self) -> D.Beta:
        return D.Beta(torch.tensor(self.a0 + self.heads), torch.tensor(self.b0 + self.tails))

    def log_evidence(self) -> float:
        """log p(x) = log B(a, b) - log B(a₀, b₀) (the ELBO's upper bound)."""
        lb = lambda a, b: (
            torch.lgamma(torch.tensor(a))
            + torch.lgamma(torch.tensor(b))
            - torch.lgamma(torch.tensor(a + b))
        )
        return float(lb(self.a0 + self.heads, self.b0 + self.tails) - lb(self.a0, self.b0))


BASELINES = {
    "none": lambda: NoBaseline(),
    "moving-average": lambda: MovingAverage(0.9),
    "loo": lambda: LeaveOneOut(),
}


@dataclass
class BetaBernoulliFit:
    a: float
    b: float
    exact_a: float
    exact_b: float
    steps: int
    converged_at: int | None
    history: dict


def first_within(history: dict, exact, tol: float) -> int | None:
    """The first step (counting from 1) after which both guide concentrations were within
    ``tol`` of the exact ones, from the run's whole history (which survives a resume)."""
    for i, (a, b) in enumerate(zip(history.get("a", []), history.get("b", [])), 1):
        if abs(a - exact[0]) < tol and abs(b - exact[1]) < tol:
            return i
    return None


BASELINE_NAMES = Names("baseline", list(BASELINES), {"ma": "moving-average"})


def fit_beta_bernoulli(
    baseline: str = "moving-average",
    n: int = 1,
    steps: int = 4000,
    lr: float = 0.01,
    schedule: str | None = None,
    seed: int = 0,
    tol: float = 0.8,
    init: float = 15.0,
    stop_when_converged: bool = False,
    checkpoint=None,
    progress: bool = False,
    model: BetaBernoulli | None = None,
    allow_changes: bool = False,
) -> BetaBernoulliFit:
    """Fit a Beta guide by the score-function ELBO (Adam on log-concentrations).

    Returns the final guide concentrations, the exact ones, and the first step at which both were
    within ``tol`` of the exact (``converged_at``; None if never). The guide's concentrations
    are logged every step (``history["a"]``, ``history["b"]``), so ``converged_at`` counts from
    the run's first step even after a resume from ``checkpoint``.
    """
    baseline = BASELINE_NAMES.resolve(baseline, option="baseline")
    model = model or BetaBernoulli()
    guide = BetaGuide(1, init, init)
    check_support(model, guide)
    est = ScoreFunctionELBO(ScoreFunction(baseline=BASELINES[baseline]()))
    post = model.posterior()
    exact = (float(post.concentration1), float(post.concentration0))

    class _Stop(Exception):
        pass

    def cb(step, history):
        a, b = guide.concentrations()
        history.setdefault("a", []).append(float(a))
        history.setdefault("b", []).append(float(b))
        if (
            stop_when_converged
            and abs(float(a) - exact[0]) < tol
            and abs(float(b) - exact[1]) < tol
        ):
            raise _Stop(history)

    try:
        res = fit(
            lambda step: est(model, guide, n),
            guide,
            steps,
            lr=lr,
            schedule=schedule,
            stateful=[est],
            seed=seed,
            checkpoint=checkpoint,
            progress=progress,
            callback=cb,
            config={"model": "beta-bernoulli", "baseline": baseline, "n": n, "init": init,
                    "prior": [model.a0, model.b0], "data": model.data.tolist()},
            allow_changes=allow_changes,
        )  # fmt: skip
        history, done = res.history, res.steps
    except _Stop as stop:
        history = stop.args[0]
        done = len(history["a"])
    a, b = guide.concentrations()
    at = first_within(history, exact, tol)
    return BetaBernoulliFit(float(a), float(b), exact[0], exact[1], done, at, history)


def steps_to_converge(baseline: str, n: int = 1, seeds=range(5), max_steps: int = 20000, **kw):
    """Steps until both guide parameters are within 0.8 of the exact posterior's, per seed."""
    return [
        fit_beta_bernoulli(
            baseline, n=n, steps=max_steps, seed=s, stop_when_converged=True, **kw
        ).converged_at
        for s in seeds
    ]
