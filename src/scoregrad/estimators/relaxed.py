"""Continuous relaxations of discrete variables: Gumbel-softmax / Concrete and straight-through.

A Categorical(softmax(θ)) draw is argmax_k (θ_k + G_k) with G_k ~ Gumbel(0, 1). Replacing the argmax
by a tempered softmax gives a reparameterised *relaxed* one-hot sample (Jang, Gu & Poole 2017;
Maddison, Mnih & Teh 2017),

    y = softmax((θ + G) / λ),    and for Bernoulli(σ(θ)):  y = σ((θ + logit(u)) / λ),

so the pathwise gradient ∇θ f(y) can be used. This is the gradient of E[f(y)], not of E[f(b)]:
**the estimator is biased** for the discrete objective, the bias shrinking as λ → 0 while the
variance grows. The *straight-through* variant hands f the hard sample (one-hot argmax, or
1[y > ½]) in the forward pass and differentiates through y in the backward pass (Bengio,
Léonard & Courville 2013): the value is then unbiased but the gradient is still biased.
``scoregrad.diagnostics.compare`` measures the bias against the exact gradient and reports its
z-score; do not use these estimators where unbiasedness matters.

f must be differentiable and accept relaxed inputs: values in (0, 1) for Bernoulli, and for
Categorical (and OneHotCategorical) *one-hot vectors* of shape (n, *batch, K) rather than indices,
e.g. ``lambda y: y @ costs`` instead of ``lambda k: costs[k]``. ``value`` is the mean of f at the
relaxed points (at the hard points for straight-through).

>>> import torch, scoregrad as sg
>>> from torch.distributions import Bernoulli
>>> theta = torch.zeros(1, requires_grad=True)
>>> est = sg.estimate_grad(lambda b: ((b - 0.499) ** 2).sum(-1), lambda theta: Bernoulli(
...     logits=theta), {"theta": theta}, n=10_000, estimator=GumbelSoftmax(0.5), seed=0)
>>> est.estimator                         # the repr says it is biased
'GumbelSoftmax(temperature=0.5, biased)'
"""

from __future__ import annotations

import torch
import torch.distributions as D

from ..errors import ArgumentError
from .applicability import family_reason, not_applicable, unwrap
from .base import Contributions, Estimator
from .pathwise import pathwise_contributions, pathwise_surrogate
from .registry import register_estimator

__all__ = ["GumbelSoftmax", "StraightThrough", "relaxed_sample"]

_FAMILIES = (D.Bernoulli, D.Categorical, D.OneHotCategorical)


class _StraightThrough(torch.autograd.Function):
    """Forward: the hard value, exactly. Backward: the gradient goes to the relaxed value."""

    @staticmethod
    def forward(ctx, hard, soft):
        return hard.clone()

    @staticmethod
    def backward(ctx, grad):
        return None, grad


def relaxed_sample(dist: D.Distribution, temperature, sample_shape=(), hard: bool = False):
    """A reparameterised relaxed sample of a Bernoulli or (OneHot)Categorical ``dist``; with
    ``hard`` the straight-through sample (hard value, relaxed gradient)."""
    base = unwrap(dist)
    t = torch.as_tensor(temperature, dtype=base.logits.dtype, device=base.logits.device)
    if isinstance(base, D.Bernoulli):
        y = D.RelaxedBernoulli(t, logits=base.logits, validate_args=False).rsample(sample_shape)
        if hard:
            y = _StraightThrough.apply((y > 0.5).to(y.dtype), y)
        return y
    y = D.RelaxedOneHotCategorical(t, logits=base.logits, validate_args=False).rsample(sample_shape)
    if hard:
        idx = y.argmax(-1)
        one_hot = torch.nn.functional.one_hot(idx, y.shape[-1]).to(y.dtype)
        y = _StraightThrough.apply(one_hot, y)
    return y


@register_estimator
class GumbelSoftmax(Estimator):
    """Gumbel-softmax / Concrete relaxation (biased), optionally straight-through.

    Declares: biased; f differentiable at relaxed inputs (so no executor); Bernoulli, Categorical
    and OneHotCategorical; one evaluation per sample.

    Args:
        temperature: λ > 0 of the relaxation.
        straight_through: hand f the hard sample, differentiate through the relaxed one.
    """

    name = "gumbel_softmax"
    biased = True
    needs_differentiable_f = True

    def __init__(self, temperature: float = 0.5, straight_through: bool = False):
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, int | float)
            or not (temperature > 0)
        ):
            raise ArgumentError(
                f"temperature must be a positive number, got {temperature!r}. Fix: e.g. 0.5."
            )
        self.temperature = float(temperature)
        self.straight_through = straight_through

    def supports(self, dist) -> str | None:
        return family_reason(dist, _FAMILIES)

    def _draw(self, dist, shape):
        why = self.supports(dist)
        if why is not None:
            raise not_applicable(type(self).__name__, dist, why)
        return relaxed_sample(dist, self.temperature, shape, hard=self.straight_through)

    def contributions(self, evaluator, dist_fn, params, n, context=None) -> Contributions:
        return pathwise_contributions(
            evaluator, dist_fn, params, n, self._draw, type(self).__name__
        )

    def surrogate(self, evaluator, dist, n, context=None):
        return pathwise_surrogate(evaluator, dist, self._draw(dist, (n,)), type(self).__name__)

    def __repr__(self):
        st = ", straight_through" if self.straight_through else ""
        return f"{type(self).__name__}(temperature={self.temperature:g}{st}, biased)"


@register_estimator
class StraightThrough(GumbelSoftmax):
    """Straight-through Gumbel-softmax: hard samples forward, relaxed gradient backward (biased)."""

    name = "straight_through"

    def __init__(self, temperature: float = 1.0):
        super().__init__(temperature, straight_through=True)

    def __repr__(self):
        return f"StraightThrough(temperature={self.temperature:g}, biased)"
