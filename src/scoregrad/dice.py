"""The DiCE "magic box" for surrogates whose derivatives of every order are unbiased.

magic(L) = exp(L - stop_grad(L)) evaluates to 1 but differentiates like exp(L), so that
∇ magic(L) = magic(L) ∇L. For a sample x ~ p(x; θ) with L = log p(x; θ),

    E[magic(L) f(x)]  has value E[f] and k-th derivative equal to ∇ᵏ E[f]  (for every k).

A baseline b enters as (1 - magic(L)) b: zero in value, it only changes the first-order gradient
(Mao et al. 2019). Reference: Foerster et al. 2018, "DiCE: The Infinitely Differentiable Monte Carlo
Estimator"; Mao et al. 2019, "A Baseline for Any Order Gradient Estimation in Stochastic
Computation Graphs".

>>> import torch
>>> lp = torch.tensor(-1.3, requires_grad=True)
>>> magic_box(lp).item()
1.0
"""

from __future__ import annotations

import torch


def magic_box(log_prob: torch.Tensor) -> torch.Tensor:
    """exp(L - L.detach()): 1 in value, ∇L in every derivative (DiCE)."""
    return torch.exp(log_prob - log_prob.detach())


def dice_surrogate(
    log_prob: torch.Tensor, f_values: torch.Tensor, baseline: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean over samples of magic(L_i) f_i (+ (1 - magic(L_i)) b_i): value mean(f), unbiased derivatives."""
    box = magic_box(log_prob)
    out = (box * f_values).mean()
    if baseline is not None:
        out = out + ((1.0 - box) * baseline).mean()
    return out
