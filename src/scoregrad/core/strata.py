"""Strata: several independent estimates of the same mean, weighted, as rows the doors can average.

A stratified estimate combines S independent groups of i.i.d. unit rows r_{s,1..m_s} (each group
unbiased for the same mean, e.g. chunks drawn by different estimators) with weights w_s that sum to
one and are fixed before the group's own rows are drawn:

    μ̂ = Σ_s w_s r̄_s,        se(μ̂)² = Σ_s w_s² v_s / m_s        (v_s: the group's sample variance)

(Cochran, *Sampling Techniques*, 1977, §5.3). The doors take a plain mean and a plain standard error
sd/√m of unit rows, so the groups are handed over as the m = Σ m_s rows

    y_{s,i} = μ̂ + a_s (r_{s,i} - r̄_s),      a_s = (m w_s / m_s) · √((m - 1) m_s / (m (m_s - 1)))

whose mean is μ̂ and whose sd/√m is se(μ̂), exactly. The rows are centred within their group, so
they are not independent draws any more: use them for the estimate and its standard error only.

>>> import torch
>>> a, b = torch.tensor([[1.0], [3.0]]), torch.tensor([[10.0], [14.0], [12.0]])
>>> y = stratified_rows([a, b], [0.5, 0.5])
>>> float(y.mean()), round(float(y.std() / y.shape[0] ** 0.5), 6)  # √(¼·2/2 + ¼·4/3)
(7.0, 0.763763)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..errors import SampleSizeError

__all__ = ["stratified_rows"]


def stratified_rows(groups: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    """Rows (concatenated along dim 0) whose mean and sd/√m are the stratified mean and standard
    error of ``groups`` (each (m_s, ...), m_s ≥ 2) with ``weights`` (summing to one)."""
    if len(groups) != len(weights) or not groups:
        raise SampleSizeError("stratified_rows needs one weight per group, and a group at least.")
    if len(groups) == 1:
        return groups[0]
    sizes = [g.shape[0] for g in groups]
    if min(sizes) < 2:
        raise SampleSizeError(
            f"every stratum needs at least 2 rows for its variance, got sizes {sizes}."
        )
    m = sum(sizes)
    wide = torch.promote_types(groups[0].dtype, torch.float64)
    means = [g.mean(0, dtype=wide) for g in groups]
    mu = sum(w * mean for w, mean in zip(weights, means, strict=True))
    out = torch.cat(groups)
    start = 0
    for w, mean, ms in zip(weights, means, sizes, strict=True):
        a = (m * w / ms) * math.sqrt((m - 1) * ms / (m * (ms - 1)))
        rows = out[start : start + ms]  # a view: the group's rows, rewritten in place (fresh
        if rows.dtype == wide:  # large temporaries cost page faults, more than the arithmetic)
            rows.sub_(mean).mul_(a).add_(mu)
        else:
            rows.copy_(mu + a * (rows.to(wide) - mean))
        start += ms
    return out
