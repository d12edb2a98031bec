"""Bayesian logistic regression on scikit-learn's breast-cancer data (Mohamed et al. 2020, §8).

    z ~ N(0, I_D),   y_i | x_i, z ~ Bernoulli(σ(x_iᵀ z)),   D = 30 standardised features + bias

with a mean-field Gaussian guide q(z) = Π_d N(μ_d, σ_d²). Each step uses a minibatch B of the
N training points, log p(x, z) ≈ log p(z) + (N/|B|) Σ_{i∈B} log p(y_i | x_i, z), and n samples
of z. The paper's set-up: batch 32, 50 samples, SGD with learning rate 1e-3 and cosine decay,
5000 steps; it compares the score function, the score function with variance reduction, the
pathwise and the measure-valued estimators on gradient variance along training.

The minibatch of step t is drawn from a generator seeded by (seed, t), so repeated gradient
draws at one step (the variance probes of ``scoregrad.vi.fit``) see the same data and measure the
estimator's Monte Carlo variance alone, and a resumed run sees the same batches.

>>> data = load_breast_cancer_split(seed=0)
>>> data.x_train.shape, data.x_test.shape
(torch.Size([455, 31]), torch.Size([114, 31]))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributions as D
import torch.nn.functional as F
from torch.distributions import constraints

from ...baselines import LeaveOneOut
from ...control_variates import DeltaMethod, ScoreControlVariate
from ...core import seeded
from ...errors import EstimatorNotApplicable, ScoregradError
from ...estimators.score_function import ScoreFunction
from ..elbo import (
    EstimateGradELBO,
    PathwiseELBO,
    RaoBlackwellELBO,
    ScoreFunctionELBO,
)
from ..guides import MeanFieldNormal
from ..training import fit

__all__ = ["LogisticData", "LogisticRegression", "load_breast_cancer_split", "ESTIMATORS", "run"]


@dataclass
class LogisticData:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_breast_cancer_split(
    test_fraction: float = 0.2, seed: int = 0, dtype=torch.float64
) -> LogisticData:
    """569 × 30 breast-cancer data, standardised with the training split's statistics, with a
    bias column appended (D = 31), split at random into train and test."""
    try:
        from sklearn.datasets import load_breast_cancer
    except ModuleNotFoundError as e:  # pragma: no cover - depends on the environment
        raise ModuleNotFoundError(
            "the logistic-regression model needs scikit-learn: pip install 'scoregrad[vi]'"
        ) from e
    x, y = load_breast_cancer(return_X_y=True)
    x = torch.as_tensor(x, dtype=dtype)
    y = torch.as_tensor(y, dtype=dtype)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(x.shape[0], generator=g)
    n_test = int(round(test_fraction * x.shape[0]))
    te, tr = perm[:n_test], perm[n_test:]
    mean, std = x[tr].mean(0), x[tr].std(0)
    x = (x - mean) / std
    x = torch.cat([x, torch.ones(x.shape[0], 1, dtype=dtype)], 1)
    return LogisticData(x[tr], y[tr], x[te], y[te])


class LogisticRegression:
    """``log_joint(z)`` on the full training set, ``minibatch(step)`` for a step's stochastic log
    joint, and posterior-predictive ``evaluate``."""

    support = constraints.real

    def __init__(self, data: LogisticData, batch_size: int = 32, seed: int = 0):
        self.data = data
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.dim = data.x_train.shape[1]
        self.n_train = data.x_train.shape[0]

    def _log_joint(self, z, x, y, scale):
        z = z.reshape(z.shape[0], self.dim).to(x)
        prior = D.Normal(0.0, 1.0).log_prob(z).sum(-1)
        logits = z @ x.T  # (n, B)
        lik = -F.binary_cross_entropy_with_logits(
            logits, y.expand_as(logits), reduction="none"
        ).sum(-1)
        return prior + scale * lik

    def log_joint(self, z: torch.Tensor) -> torch.Tensor:
        """log p(y, z) on the whole training set."""
        return self._log_joint(z, self.data.x_train, self.data.y_train, 1.0)

    def batch_indices(self, step: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        return torch.randint(self.n_train, (self.batch_size,), generator=g)

    def minibatch(self, step: int):
        """The unbiased minibatch log joint of step ``step``: log p(z) + (N/B) Σ_batch log p(y|x,z)."""
        idx = self.batch_indices(step)
        x, y = self.data.x_train[idx], self.data.y_train[idx]
        scale = self.n_train / self.batch_size
        return lambda z: self._log_joint(z, x, y, scale)

    @torch.no_grad()
    def evaluate(self, guide: MeanFieldNormal, samples: int = 2000, seed: int = 0) -> dict:
        """Posterior-predictive test accuracy and mean test log-likelihood, and the full-data ELBO,
        by Monte Carlo with ``samples`` draws from the guide."""
        with seeded(seed):
            q = guide()
            z = q.sample((samples,)).to(self.data.x_test)
            p = torch.sigmoid(z @ self.data.x_test.T).mean(0)  # p(y=1 | x, data)
            y = self.data.y_test
            ll = (y * p.clamp_min(1e-12).log() + (1 - y) * (1 - p).clamp_min(1e-12).log()).mean()
            acc = ((p > 0.5).to(y) == y).to(y).mean()
            w = self.log_joint(z) - q.log_prob(z.to(guide.loc)).to(z)
            elbo, elbo_se = w.mean(), w.std() / samples**0.5
        return {
            "test_accuracy": float(acc),
            "test_log_lik": float(ll),
            "elbo": float(elbo),
            "elbo_stderr": float(elbo_se),
        }


#: the estimators compared (all with the same n samples per step)
ESTIMATORS = {
    "score": lambda: ScoreFunctionELBO(ScoreFunction()),
    "score-loo": lambda: ScoreFunctionELBO(ScoreFunction(LeaveOneOut())),
    "score-rb-cv": lambda: RaoBlackwellELBO(control_variate=True),
    # the delta-method control variate (second-order Taylor expansion of f around the guide's
    # mean, Paisley et al. 2012), used by Mohamed et al. 2020 §8 as "score function + variance
    # reduction". No baseline: the control variate already removes f's mean, and a leave-one-out
    # baseline on top would subtract it twice (see docs/vi.md).
    "score-delta": lambda: EstimateGradELBO(ScoreFunction(control_variate=DeltaMethod())),
    "score-cv": lambda: EstimateGradELBO(
        ScoreFunction(LeaveOneOut(), control_variate=ScoreControlVariate())
    ),
    "pathwise": lambda: PathwiseELBO(),
    # measure-valued derivatives (weak derivatives; Mohamed et al. 2020 §6) from the core's
    # estimators, with and without coupling (common random numbers); 4·D extra evaluations of the
    # log joint per sample
    "measure-valued": lambda: EstimateGradELBO(_measure_valued(coupling=True)),
    "measure-valued-uncoupled": lambda: EstimateGradELBO(_measure_valued(coupling=False)),
}


def _measure_valued(coupling: bool):
    import scoregrad.estimators as E

    if not hasattr(E, "MeasureValued"):
        raise EstimatorNotApplicable(
            "this install of scoregrad has no MeasureValued estimator (scoregrad.estimators); "
            "use score-delta, score-rb-cv or pathwise."
        )
    return E.MeasureValued(coupling=coupling)


def available(name: str) -> bool:
    """Whether estimator ``name`` can be built with this install."""
    try:
        ESTIMATORS[name]()
    except EstimatorNotApplicable:
        return False
    return True


def run(
    estimator: str = "score-rb-cv",
    steps: int = 5000,
    n: int = 50,
    batch_size: int = 32,
    lr: float = 1e-3,
    optimizer: str = "sgd",
    schedule: str = "cosine",
    seed: int = 0,
    grad_var_every: int = 250,
    grad_var_repeats: int = 20,
    checkpoint=None,
    progress: bool = True,
    init_scale: float = 0.1,
    dtype=torch.float64,
    allow_changes: bool = False,
) -> dict:
    """Fit the mean-field guide with one estimator; return history and test metrics."""
    if estimator not in ESTIMATORS:
        raise ScoregradError(
            f"unknown estimator {estimator!r}. Fix: use one of {', '.join(ESTIMATORS)}."
        )
    data = load_breast_cancer_split(seed=0, dtype=dtype)
    model = LogisticRegression(data, batch_size=batch_size, seed=seed)
    guide = MeanFieldNormal(model.dim, init_scale=init_scale, dtype=dtype)
    est = ESTIMATORS[estimator]()
    res = fit(
        lambda step: est(model.minibatch(step), guide, n),
        guide,
        steps,
        optimizer=optimizer,
        lr=lr,
        schedule=schedule,
        stateful=[est],
        seed=seed,
        checkpoint=checkpoint,
        grad_var_every=grad_var_every,
        grad_var_repeats=grad_var_repeats,
        progress=progress,
        config={
            "model": "logistic", "estimator": estimator, "n": n, "batch_size": batch_size,
            "init_scale": init_scale, "dtype": str(dtype),
        },
        allow_changes=allow_changes,
    )  # fmt: skip
    out = model.evaluate(guide)
    out.update(
        estimator=estimator,
        steps=res.steps,
        seconds=res.seconds,
        steps_per_second=(res.steps - (res.resumed_from or 0)) / max(res.seconds, 1e-9),
        history=res.history,
    )
    return out
