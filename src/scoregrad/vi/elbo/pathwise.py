"""Reparameterisation ELBOs: ``PathwiseELBO`` (Kingma & Welling 2014; sticking the landing,
Roeder et al. 2017) and the importance-weighted bound trained pathwise (IWAE, Burda et al. 2016)."""

from __future__ import annotations

import math

import torch

from ...core import sum_trailing
from ...errors import EstimatorNotApplicable, SampleSizeError
from ..guides import Guide
from .base import ELBOEstimator, _as_dist, _check_n, _log_q
from .checks import call_log_joint


class PathwiseELBO(ELBOEstimator):
    """Reparameterisation gradient: z = g(ε; φ), ∇φ ELBO = E_ε[∇φ (log p(x, g(ε; φ)) - log q(g))].

    ``stick_the_landing=True`` drops the score part of ∇ log q (zero mean) by evaluating log q with
    detached guide parameters (Roeder, Wu, Duvenaud 2017); it needs a ``Guide``.

    >>> import torch
    >>> from scoregrad.vi import MeanFieldNormal
    >>> guide = MeanFieldNormal(2)
    >>> PathwiseELBO()(lambda z: -(z ** 2).sum(-1), guide, n=8).backward()
    >>> guide.loc.grad.shape
    torch.Size([2])
    """

    name = "pathwise"

    def __init__(self, stick_the_landing: bool = False):
        self.stick_the_landing = stick_the_landing

    def __call__(self, log_joint, guide, n, item_shape=(), context=None):
        _check_n(n)
        q = _as_dist(guide)
        if not q.has_rsample:
            raise EstimatorNotApplicable(
                f"the pathwise ELBO needs a reparameterisable guide, but {type(q).__name__} has no "
                "rsample (discrete latents never do). Fix: use ScoreFunctionELBO (or ARM/DisARM/"
                "REBAR/RELAX for binary latents), or a continuous relaxation."
            )
        keep = 1 + len(tuple(item_shape))
        z = q.rsample((n,))
        if self.stick_the_landing:
            if not isinstance(guide, Guide):
                raise EstimatorNotApplicable(
                    "stick_the_landing needs a scoregrad.vi.Guide (to rebuild q with detached "
                    "parameters)."
                )
            qd = guide.dist_fn(**{k: p.detach() for k, p in guide.params().items()})
            lq = sum_trailing(qd.log_prob(z), keep=keep)  # detached parameters, graph to z
        else:
            lq = _log_q(q, z, keep)
        lp = call_log_joint(log_joint, z, tuple(item_shape))
        return (lp - lq).mean(0).sum()

    def __repr__(self):
        return f"PathwiseELBO(stick_the_landing={self.stick_the_landing})"


def _iw(log_w: torch.Tensor) -> torch.Tensor:
    k = log_w.shape[0]
    return torch.logsumexp(log_w, 0) - math.log(k)


class ImportanceWeightedELBO(ELBOEstimator):
    """The importance-weighted bound with k samples, trained pathwise (IWAE):

        L_k = E[log (1/k) Σ_j p(x, z_j) / q(z_j)],   L_1 = ELBO ≤ L_k ≤ log p(x).

    Each call draws ``n`` independent groups of k samples. Needs a reparameterisable guide (use the
    core's VIMCO estimator for discrete latents). Reference: Burda et al. 2016.
    """

    name = "iwae"

    def __init__(self, k: int = 5):
        if k < 1:
            raise SampleSizeError(f"the importance-weighted bound needs k >= 1 samples, got {k}.")
        self.k = int(k)

    def __call__(self, log_joint, guide, n, item_shape=(), context=None):
        _check_n(n)
        q = _as_dist(guide)
        if not q.has_rsample:
            raise EstimatorNotApplicable(
                f"ImportanceWeightedELBO is pathwise and {type(q).__name__} has no rsample. Fix: "
                "use the VIMCO estimator (scoregrad.estimators) for discrete latents."
            )
        keep = 1 + len(tuple(item_shape))
        z = q.rsample((n * self.k,))
        log_w = call_log_joint(log_joint, z, tuple(item_shape)) - _log_q(q, z, keep)
        log_w = log_w.reshape(self.k, n, *log_w.shape[1:])
        return _iw(log_w).mean(0).sum()

    def __repr__(self):
        return f"ImportanceWeightedELBO(k={self.k})"
