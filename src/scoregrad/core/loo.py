"""Leave-one-out statistics: for every sample, sums, means and regression coefficients computed
from the samples *outside* its block, so they are independent of it.

A coefficient or baseline that never saw sample i keeps ĝ_i = (f_i - b_i) s_i - c_i H_i unbiased
(E[s] = E[H] = 0 and independence), at the cost of no extra evaluation of f. Blocks of ``block``
consecutive samples are the independent units (antithetic pairs, QMC replicates); leaving out a
sample leaves out its whole block. All functions are vectorised: two sums per statistic, no loop.

* ``excluding_own_block(t, block)``: Σ of t over the other blocks, per sample.
* ``loo_mean(f, block)``: the mean of f over the other blocks (the RLOO baseline; VIMCO's
  leave-one-out log-weight mean).
* ``loo_coefficient(H, block, g=... | f=..., s=...)``: Cov(g, H) / Var(H) per element from the
  other blocks (control-variate coefficients, Mohamed et al. 2020 §7.4).
* ``loo_regress(y, C, block)``: y - cᵀC with c the least-squares fit of y on several controls C
  from the other blocks (the multi-control version, e.g. for option Greeks).

References: Kool, van Hoof, Welling 2019 ("Buy 4 REINFORCE samples, get a baseline for free!");
Mohamed, Rosca, Figurnov, Mnih 2020, "Monte Carlo Gradient Estimation in Machine Learning", §7.

>>> import torch
>>> loo_mean(torch.tensor([1.0, 2.0, 3.0]), block=1)
tensor([2.5000, 2.0000, 1.5000])
>>> excluding_own_block(torch.tensor([1.0, 2.0, 3.0, 4.0]), block=2)
tensor([7., 7., 3., 3.])
"""

from __future__ import annotations

import torch

from .shapes import broadcast_rows

__all__ = ["unit_sums", "expand_units", "excluding_own_block", "loo_mean", "loo_coefficient",
           "loo_regress"]  # fmt: skip


def unit_sums(t: torch.Tensor, block: int) -> torch.Tensor:
    """Sums of consecutive blocks of ``block`` rows: shape (n / block, *rest)."""
    return t.reshape(t.shape[0] // block, block, *t.shape[1:]).sum(1)


def expand_units(u: torch.Tensor, block: int) -> torch.Tensor:
    """One row per unit (U, *rest) repeated for each of its ``block`` samples: (U·block, *rest)."""
    if block == 1:
        return u
    return u.unsqueeze(1).expand(u.shape[0], block, *u.shape[1:]).reshape(-1, *u.shape[1:])


def excluding_own_block(t: torch.Tensor, block: int) -> torch.Tensor:
    """For each sample, the sum of t over all samples outside its block (shape of t)."""
    total = t.sum(0, keepdim=True)
    if block == 1:
        return total - t
    return total - expand_units(unit_sums(t, block), block)


def loo_mean(f: torch.Tensor, block: int = 1) -> torch.Tensor:
    """For each sample, the mean of f over the samples outside its block (shape of f)."""
    return excluding_own_block(f, block) / (f.shape[0] - block)


def loo_coefficient(
    H: torch.Tensor,
    block: int,
    *,
    g: torch.Tensor | None = None,
    f: torch.Tensor | None = None,
    s: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-sample coefficient Cov(g, H)/Var(H) estimated from the other blocks, given E[H] = 0.

    Either ``g`` (the gradient terms, when the baseline does not depend on this batch), or ``f`` and
    ``s`` for terms (f - f̄) s, where f̄ is itself the mean over the *other* blocks: a leave-one-out
    baseline must not carry a sample's own f into its coefficient, or the estimator is biased.
    f has one value per sample (n,), or per sample and element (the shape of s).

    >>> g, H = torch.tensor([[1.0], [2.0], [3.0]]), torch.tensor([[1.0], [1.0], [2.0]])
    >>> loo_coefficient(H, 1, g=g).flatten().tolist()   # (2+6)/(1+4), (1+6)/(1+4), (1+2)/(1+1)
    [1.600000023841858, 1.399999976158142, 1.5]
    """
    den = excluding_own_block(H * H, block)
    if g is not None:
        num = excluding_own_block(g * H, block)
    else:
        f_other = broadcast_rows(loo_mean(f, block), H)
        fs = broadcast_rows(f, H) * s
        num = excluding_own_block(fs * H, block) - f_other * excluding_own_block(s * H, block)
    tiny = torch.finfo(den.dtype).tiny
    return torch.where(den > 0, num / den.clamp_min(tiny), torch.zeros_like(den))


def loo_regress(y: torch.Tensor, C: torch.Tensor, block: int = 1) -> torch.Tensor:
    """Per-sample y_i - c_uᵀ C_i, with c_u fitted by least squares on the samples of every *other*
    unit u' ≠ u (unit = block of ``block`` consecutive samples): c_u is independent of unit u and
    E[C] = 0, so the result stays unbiased; fitting on samples (not unit means) keeps it stable
    under QMC, whose unit means of C are nearly exact.

    y: (n, *B); C: (n, *B, k). c_u = (Σ_{i∉u} C_i C_iᵀ)^{-1} Σ_{i∉u} C_i y_i.

    >>> C = torch.tensor([[1.0], [-1.0], [2.0], [-2.0]], dtype=torch.float64)
    >>> bool(loo_regress(3.0 * C[:, 0], C).abs().max() < 1e-9)  # y in the controls' span: removed
    True
    """
    k = C.shape[-1]
    G = unit_sums(C.unsqueeze(-1) * C.unsqueeze(-2), block)
    r = unit_sums(C * y.unsqueeze(-1), block)
    Gm = G.sum(0, keepdim=True) - G
    rm = r.sum(0, keepdim=True) - r
    scale = torch.diagonal(Gm, dim1=-2, dim2=-1).mean(-1, keepdim=True).unsqueeze(-1)
    eye = torch.eye(k, dtype=C.dtype, device=C.device)
    Gm = Gm + eye * (1e-12 * scale + torch.finfo(C.dtype).tiny)
    coef = torch.linalg.solve(Gm, rm.unsqueeze(-1)).squeeze(-1)  # (U, *B, k)
    return y - (expand_units(coef, block) * C).sum(-1)
