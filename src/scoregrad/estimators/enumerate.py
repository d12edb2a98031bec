"""Exact enumeration: sum over a small discrete support instead of sampling.

For a discrete x with finite support S (Bernoulli, Categorical, OneHotCategorical, Binomial, and
batches of them, whose joint support is the product of the elements' supports),

    E_θ[f(x)] = Σ_{s ∈ S} p(s; θ) f(s),     ∇θ E_θ[f(x)] = Σ_{s ∈ S} f(s) ∇θ p(s; θ),

computed exactly (no Monte Carlo error: the standard errors are zero) at the cost of |S|
evaluations of f, whatever n is. Useful to test other estimators against, and wherever |S| is small.
The joint support of d independent elements with K values each has K^d points: ``max_support``
(default 4096) refuses larger ones with an error that names the sampling estimators.

With ``item_shape`` in ``scoregrad.expectation`` (f returns one value per sample and item, e.g.
per data point) each item's elements are enumerated jointly and all items take the same support
point at once, which is right because item i's value depends on item i's elements only: |S| is then
the support of one item, not of the whole batch. The surrogate Σ_s p(s; θ) f(s) is differentiable
to any order (Hessians are exact too).

>>> import torch, scoregrad as sg
>>> from torch.distributions import Bernoulli
>>> theta = torch.zeros(2, requires_grad=True)
>>> est = sg.estimate_grad(lambda b: (b[:, 0] - 2 * b[:, 1]) ** 2, lambda theta: Bernoulli(
...     logits=theta), {"theta": theta}, n=10, estimator=Enumerate())
>>> est.grad["theta"], est.stderr["theta"], est.n_evals        # exact, four evaluations of f
(tensor([-0.2500,  0.5000]), tensor([0., 0.]), 4)
"""

from __future__ import annotations

import math

import torch
import torch.distributions as D

from ..core.model import build_distribution
from ..errors import SampleSizeError
from ._common import not_applicable, unwrap
from .base import Contributions, Estimator

__all__ = ["Enumerate", "joint_support"]


def joint_support(
    dist: D.Distribution, lead_dims: int = 0, max_support: int = 4096
) -> torch.Tensor:
    """Every joint value of ``dist``'s elements after its first ``lead_dims`` batch dimensions.

    Returns a tensor (m, *batch[lead_dims:], *event), m = K^d for d elements with K values each;
    the leading batch dimensions are left to broadcast (each takes the same support point).
    Raises EstimatorNotApplicable when the family cannot be enumerated or m > ``max_support``.
    """
    base = unwrap(dist)
    if not getattr(base, "has_enumerate_support", False):
        raise not_applicable(
            "Enumerate", dist,
            f"{type(base).__name__} has no finite support to enumerate (has_enumerate_support is "
            "False); enumerate only discrete families such as Bernoulli or Categorical",
        )  # fmt: skip
    event = tuple(base.event_shape)
    support = base.enumerate_support(expand=False)
    k = support.shape[0]
    if support.numel() != k * max(1, math.prod(event)):
        raise not_applicable(
            "Enumerate", dist,
            "its elements have different supports (e.g. Binomial with different total counts); "
            "enumerate a batch whose elements share one support",
        )  # fmt: skip
    values = support.reshape(k, *event)
    rest = tuple(base.batch_shape[lead_dims:])
    d = math.prod(rest)
    m = k**d
    if m > max_support:
        raise not_applicable(
            "Enumerate", dist,
            f"its joint support has {k}^{d} = {m} points, more than max_support={max_support}; "
            "raise max_support if f is cheap, or use a sampling estimator (ScoreFunction with "
            "LeaveOneOut, DisARM)",
        )  # fmt: skip
    # mixed-radix digits: row j of idx is the j-th point of the product of d supports of size k
    j = torch.arange(m, device=values.device)
    radix = k ** torch.arange(d - 1, -1, -1, device=values.device)
    idx = (j.unsqueeze(1) // radix) % k
    return values[idx].reshape(m, *rest, *event)


class Enumerate(Estimator):
    """Exact expectation and gradient by summing over the discrete support (no sampling).

    Args:
        max_support: refuse joint supports with more points than this.
    """

    name = "enumerate"
    biased = False

    def __init__(self, max_support: int = 4096):
        if not isinstance(max_support, int) or max_support < 1:
            raise SampleSizeError(f"max_support must be a positive integer, got {max_support!r}.")
        self.max_support = max_support

    def supports(self, dist: D.Distribution) -> str | None:
        """None if ``dist`` can be enumerated, else the reason."""
        try:
            joint_support(dist, max_support=self.max_support)
        except Exception as e:  # noqa: BLE001 - the reason is the message
            return str(e)
        return None

    @staticmethod
    def _weights(dist: D.Distribution, support: torch.Tensor, lead_dims: int) -> torch.Tensor:
        """p(s) per support point (and per leading item): (m, *batch[:lead_dims])."""
        lp = dist.log_prob(support)
        extra = lp.dim() - 1 - lead_dims
        return lp.sum(tuple(range(-extra, 0))).exp() if extra > 0 else lp.exp()

    def contributions(self, evaluator, dist_fn, params, n, context=None) -> Contributions:
        leaves = {k: p.detach().requires_grad_() for k, p in params.items()}
        with torch.enable_grad():
            dist = build_distribution(dist_fn, leaves)
            support = joint_support(dist, max_support=self.max_support)
            fx = evaluator(support)
            w = self._weights(dist, support, 0)
            value = (w * fx.to(w)).sum()
            outs = torch.autograd.grad(value, list(leaves.values()), allow_unused=True)
        grads = {
            k: (o if o is not None else torch.zeros_like(v)).unsqueeze(0).expand(n, *v.shape)
            for (k, v), o in zip(leaves.items(), outs, strict=True)
        }
        return Contributions(values=value.detach().expand(n), grads=grads, block=1)

    def surrogate(self, evaluator, dist, n, context=None):
        lead = len(evaluator.item_shape)
        support = joint_support(dist, lead_dims=lead, max_support=self.max_support)
        m = support.shape[0]
        # every leading item takes the same support point: broadcast over the item dimensions
        full = support.reshape(m, *([1] * lead), *support.shape[1:]).expand(
            m, *dist.batch_shape, *dist.event_shape
        )
        fx = evaluator(full, keep_graph=True)  # (m, *items)
        w = self._weights(dist, full, lead)
        surrogate = (w * fx).sum(0).sum()
        return surrogate.detach(), surrogate

    def __repr__(self):
        return f"Enumerate(max_support={self.max_support})"
