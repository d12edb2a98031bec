"""Normal-Normal: an unknown mean z with prior N(μ₀, σ₀²) and data x_i ~ N(z, σ²), i = 1..N.

    p(z | x) = N(μ_N, σ_N²),  1/σ_N² = 1/σ₀² + N/σ²,  μ_N = σ_N² (μ₀/σ₀² + Σx/σ²)

The model is conjugate, so a Normal guide can match the posterior exactly, and the maximal
ELBO equals log p(x). Used to check that every estimator recovers the exact posterior.

>>> m = NormalNormal(data=[1.0, 2.0, 3.0], prior_scale=1.0, noise_scale=1.0)
>>> p = m.posterior(); float(p.loc), round(float(p.scale), 4)
(1.5, 0.5)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.distributions as D
from torch.distributions import constraints

__all__ = ["NormalNormal"]


class NormalNormal:
    """``log_joint(z)`` for z of shape (n, dim) (``dim`` independent copies of the same data), and
    the exact ``posterior()`` and ``log_evidence()``."""

    support = constraints.real

    def __init__(
        self,
        data: Sequence[float] | None = None,
        prior_loc: float = 0.0,
        prior_scale: float = 2.0,
        noise_scale: float = 1.0,
        dim: int = 1,
    ):
        if data is None:
            data = torch.linspace(0.0, 3.0, 20)
        self.data = torch.as_tensor(data, dtype=torch.get_default_dtype())
        self.mu0, self.s0, self.s = float(prior_loc), float(prior_scale), float(noise_scale)
        self.dim = int(dim)

    def log_joint(self, z: torch.Tensor) -> torch.Tensor:
        z = z.reshape(z.shape[0], -1)
        prior = D.Normal(self.mu0, self.s0).log_prob(z).sum(-1)
        lik = D.Normal(z.unsqueeze(-1), self.s).log_prob(self.data).sum((-1, -2))
        return prior + lik

    def log_joint_local(self, z: torch.Tensor) -> torch.Tensor:
        """Per-component Markov blanket: each z_d's prior and likelihood terms, shape (n, dim)."""
        z = z.reshape(z.shape[0], -1)
        return D.Normal(self.mu0, self.s0).log_prob(z) + D.Normal(z.unsqueeze(-1), self.s).log_prob(
            self.data
        ).sum(-1)

    def posterior(self) -> D.Normal:
        n = self.data.numel()
        prec = 1.0 / self.s0**2 + n / self.s**2
        var = 1.0 / prec
        loc = var * (self.mu0 / self.s0**2 + float(self.data.sum()) / self.s**2)
        return D.Normal(torch.tensor(loc), torch.tensor(math.sqrt(var)))

    def log_evidence(self) -> float:
        """log p(x) for all ``dim`` copies (x ~ N(μ₀1, σ²I + σ₀²11ᵀ))."""
        n = self.data.numel()
        cov = self.s**2 * torch.eye(n, dtype=torch.float64) + self.s0**2
        mvn = D.MultivariateNormal(torch.full((n,), self.mu0, dtype=torch.float64), cov)
        return self.dim * float(mvn.log_prob(self.data.double()))
