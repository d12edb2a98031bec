"""Gumbel-Rao: the straight-through Gumbel-softmax estimator, Rao-Blackwellised (biased).

Paulus, Maddison & Krause 2021 (ICLR; arXiv 2020), "Rao-Blackwellizing the Straight-Through
Gumbel-Softmax Gradient Estimator". Straight-through Gumbel-softmax hands f the hard one-hot
D = H(θ + G) and differentiates through softmax((θ + G)/λ). Gumbel-Rao replaces that Jacobian by
its conditional expectation given D, estimated with m Gumbel vectors drawn given the argmax
(``conditional_gumbel``):

    ĝ = ∂f/∂D |_D · (1/m) Σ_r ∂softmax((θ + G_r)/λ)/∂θ,    G_r ~ p(G | argmax(θ + G) = D).

The forward value is exactly f(D) (unbiased for E[f]); the gradient is **biased** for ∇ E[f] (as
straight-through is), with no more variance than straight-through at the same λ. f must be
differentiable and take one-hot vectors (..., K), for Categorical as for OneHotCategorical; one
evaluation of f per sample. ``scoregrad.diagnostics.compare`` measures the bias.

>>> import torch, scoregrad as sg
>>> p = sg.problems.get("categorical_table")
>>> est = sg.estimate_grad(p.f, p.dist_fn, p.params(), n=2_000, estimator=GumbelRao(), seed=0)
>>> est.estimator
'GumbelRao(temperature=1, num_gumbels=10, biased)'
"""

from __future__ import annotations

import torch
import torch.distributions as D
import torch.nn.functional as F

from ..errors import SampleSizeError
from ._categorical import categorical_reason, conditional_gumbel, gumbel
from ._common import not_applicable, unwrap
from .base import Contributions, Estimator
from .pathwise import differentiable_eval, pathwise_contributions
from .registry import register_estimator

__all__ = ["GumbelRao"]


@register_estimator
class GumbelRao(Estimator):
    """Rao-Blackwellised straight-through Gumbel-softmax (Paulus et al. 2020); biased.

    Args:
        temperature: λ > 0 of the relaxation.
        num_gumbels: m, conditional Gumbel draws averaged per sample (m = 1 is straight-through).
    """

    name = "gumbel_rao"
    biased = True
    unit = "sample"
    samples_per_unit = 1

    def __init__(self, temperature: float = 1.0, num_gumbels: int = 10):
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}.")
        if not isinstance(num_gumbels, int) or num_gumbels < 1:
            raise ValueError(f"num_gumbels must be a positive integer, got {num_gumbels!r}.")
        self.temperature = float(temperature)
        self.num_gumbels = num_gumbels

    def supports(self, dist: D.Distribution) -> str | None:
        return categorical_reason(dist)

    def evals_per_unit(self, dist: D.Distribution) -> int:
        return 1

    def check(self, n: int) -> None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise SampleSizeError(f"GumbelRao needs n ≥ 1 samples, got {n!r}.")

    def _draw(self, dist, shape):
        why = self.supports(dist)
        if why is not None:
            raise not_applicable(type(self).__name__, dist, why)
        logits = unwrap(dist).logits
        logits = logits.expand(*shape, *logits.shape)
        with torch.no_grad():
            L = logits.detach()
            b = (L + gumbel(L)).argmax(-1)
            E = torch.empty(self.num_gumbels, *L.shape, dtype=L.dtype, device=L.device)
            z = conditional_gumbel(L, b, E.exponential_())
            # a -inf logit (a category of probability 0) has z = -inf: its noise is 0, not
            # -inf - (-inf) = NaN, so its relaxed weight is exactly 0
            noise = torch.where(torch.isneginf(L), 0.0, z - L)
        soft = torch.softmax((logits + noise) / self.temperature, -1).mean(0)
        hard = F.one_hot(b, L.shape[-1]).to(L.dtype)
        return hard + (soft - soft.detach())  # value exactly hard, gradient through soft

    def contributions(self, evaluator, dist_fn, params, n, context=None) -> Contributions:
        self.check(n)
        return pathwise_contributions(
            evaluator, dist_fn, params, n, self._draw, type(self).__name__
        )

    def surrogate(self, evaluator, dist, n, context=None):
        self.check(n)
        y = self._draw(dist, (n,))
        fx = differentiable_eval(evaluator, y, dist, type(self).__name__)
        surrogate = fx.mean(0).sum()
        return surrogate.detach(), surrogate

    def __repr__(self):
        return (
            f"GumbelRao(temperature={self.temperature:g}, num_gumbels={self.num_gumbels}, biased)"
        )
