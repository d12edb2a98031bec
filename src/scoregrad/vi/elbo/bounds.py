"""Bounds without gradients and exact references: ``iw_bound`` (the k-sample importance-weighted
bound, streamed; the standard test log-likelihood) and ``exact_elbo`` (enumeration over a small
discrete guide, differentiable: the reference for unbiasedness tests)."""

from __future__ import annotations

import math

import torch
import torch.distributions as D

from ...core import seeded, sum_trailing
from ...errors import EstimatorNotApplicable
from .base import _as_dist, _log_q
from .checks import call_log_joint


@torch.no_grad()
def iw_bound(
    log_joint, guide, k: int, item_shape=(), chunk_size: int = 100, seed: int | None = None
) -> torch.Tensor:
    """log (1/k) Σ_j p(x, z_j)/q(z_j) with z_j ~ q, per item (shape item_shape), no gradients.

    The k samples are drawn in chunks of ``chunk_size`` and merged with a running log-sum-exp, so
    memory is that of one chunk. Its expectation is the k-sample bound L_k; for k = 1000 it is the
    standard "test log-likelihood" estimate of discrete-VAE papers.

    >>> import torch
    >>> log_joint = lambda z: torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    >>> q = torch.distributions.Independent(torch.distributions.Normal(torch.zeros(2), 1.2), 1)
    >>> b = iw_bound(log_joint, q, k=100_000, seed=0)  # log ∫ p = 0 for a normalised p
    >>> abs(float(b)) < 0.01
    True
    """
    q = _as_dist(guide)
    keep = 1 + len(tuple(item_shape))
    with seeded(seed, _device(q)):
        acc = None
        done = 0
        while done < k:
            m = min(chunk_size, k - done)
            z = q.sample((m,))
            log_w = call_log_joint(log_joint, z, tuple(item_shape)) - _log_q(q, z, keep)
            lse = torch.logsumexp(log_w, 0)
            acc = lse if acc is None else torch.logaddexp(acc, lse)
            done += m
    return acc - math.log(k)


def _device(q: D.Distribution):
    """The device q samples on (where its seed must go), if it says."""
    try:
        return q.mean.device
    except (NotImplementedError, AttributeError):
        return None


def _configurations(base: D.Distribution) -> torch.Tensor:
    """Every joint configuration of a batched discrete distribution, shape (K^D, *batch)."""
    if not base.has_enumerate_support:
        raise EstimatorNotApplicable(
            f"exact_elbo enumerates the guide's support, but {type(base).__name__} cannot be "
            "enumerated; use a Bernoulli/Categorical/OneHotCategorical guide."
        )
    shape = tuple(base.batch_shape)
    values = base.enumerate_support(expand=False).reshape(-1)  # (K,) for Bernoulli/Categorical
    d = math.prod(shape) if shape else 1
    if values.numel() ** d > 2**20:
        raise EstimatorNotApplicable(
            f"exact_elbo would enumerate {values.numel()}^{d} configurations; keep it below 2^20."
        )
    if d == 1:
        return values.reshape(-1, *shape) if shape else values
    grid = torch.cartesian_prod(*([values] * d))
    return grid.reshape(-1, *shape)


def exact_elbo(log_joint, guide) -> torch.Tensor:
    """Σ_z q(z) (log p(x, z) - log q(z)) over every configuration of a small discrete guide.

    Differentiable in the guide's parameters: its autograd gradient is the exact ELBO gradient,
    the reference for unbiasedness tests of the estimators.

    >>> import torch
    >>> from scoregrad.vi import MeanFieldBernoulli
    >>> g = MeanFieldBernoulli(2)
    >>> round(float(exact_elbo(lambda z: torch.zeros(z.shape[0]), g).detach()), 4)  # = entropy 2 log 2
    1.3863
    """
    q = _as_dist(guide)
    base = q.base_dist if isinstance(q, D.Independent) else q
    z = _configurations(base)
    log_q = sum_trailing(base.log_prob(z), keep=1)
    lp = call_log_joint(log_joint, z)
    return (log_q.exp() * (lp - log_q)).sum()
