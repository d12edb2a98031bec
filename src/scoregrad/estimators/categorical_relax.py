"""REBAR and RELAX for Categorical variables: the Gumbel relaxation and its conditional.

For b ~ Categorical(softmax θ) write b = H(z) = argmax z with z = θ + G, G i.i.d. Gumbel, and draw
z̃ ~ p(z | b) by reparameterisation (Grathwohl et al. 2018, appendix B; Tucker et al. 2017):

    z̃_b = log Σ_i e^{θ_i} - log E_b,    z̃_i = -log(E_i e^{-θ_i} + E_b e^{-log Σ e^θ})  (i ≠ b),

E ~ Exp(1). The estimator of ``scoregrad.estimators.rebar`` is then unchanged,
ĝ = [f(b) - c(z̃)] ∇log p(b) + ∇c(z) - ∇c(z̃), with ∇_θ log p(b) = e_b - softmax(θ) and the
relaxed input softmax(z/λ) for REBAR's c(z) = η f(softmax(z/λ)). This module registers the
relaxation for ``Categorical`` and ``OneHotCategorical``; ``REBAR()`` and ``RELAX()`` dispatch on it.

What f sees: with a relaxed f in the control (REBAR, ``RELAX(relaxed_f=True)``) f takes one-hot
vectors (..., K), hard ones at b and relaxed ones at z, z̃, so f must be differentiable in them;
a black-box RELAX (network control only) hands a ``Categorical``'s f category indices.

>>> import torch, scoregrad as sg
>>> from torch.distributions import OneHotCategorical
>>> costs = torch.tensor([1.0, -2.0, 0.5])
>>> theta = torch.zeros(3, requires_grad=True)
>>> est = sg.estimate_grad(lambda y: y @ costs, lambda theta: OneHotCategorical(logits=theta),
...                        {"theta": theta}, n=4000, estimator=sg.REBAR(), seed=0)
>>> p = torch.softmax(theta.detach(), -1); exact = p * (costs - p @ costs)
>>> bool(((est.grad["theta"] - exact).abs() < 4.42 * est.stderr["theta"]).all()), est.n_evals
(True, 12000)
"""

from __future__ import annotations

import torch
import torch.distributions as D
import torch.nn.functional as F

from ._categorical import conditional_gumbel
from .rebar import _clamp01, register_relaxation

__all__ = ["CategoricalRelaxation", "OneHotCategoricalRelaxation"]


@register_relaxation(D.Categorical)
class CategoricalRelaxation:
    """z = θ + G, b = argmax z, z̃ ~ p(z | b), relaxed softmax(z/λ); f takes indices or one-hot."""

    one_hot = False

    @staticmethod
    def noise(logits):
        u = _clamp01(torch.rand(logits.shape, dtype=logits.dtype, device=logits.device))
        v = _clamp01(torch.rand(logits.shape, dtype=logits.dtype, device=logits.device))
        return u, v

    @staticmethod
    def z(L, u):
        return L - torch.log(-torch.log(u))

    def hard(self, logits, u):
        return self.z(logits, u).argmax(-1)

    @staticmethod
    def z_tilde(L, b, v):
        return conditional_gumbel(L, b, -torch.log(v))

    def hard_input(self, b, logits, draw_shape, relaxed_f):
        if self.one_hot or relaxed_f:  # one form for f's hard and relaxed inputs
            return F.one_hot(b, logits.shape[-1]).to(logits.dtype)
        return b.reshape(draw_shape)

    @staticmethod
    def relaxed_input(z, temperature, draw_shape):
        return torch.softmax(z / temperature, -1)

    @staticmethod
    def score(L, b):
        return F.one_hot(b, L.shape[-1]).to(L.dtype) - torch.softmax(L, -1)


@register_relaxation(D.OneHotCategorical)
class OneHotCategoricalRelaxation(CategoricalRelaxation):
    """As ``CategoricalRelaxation``; f always takes one-hot vectors."""

    one_hot = True
