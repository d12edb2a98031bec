"""Numerically stable streaming moments (Chan, Golub, LeVeque 1979 parallel update)."""

from __future__ import annotations

import torch


class RunningMoments:
    """Mean and sum of squared deviations of a stream of batches, merged in float64.

    Each batch is a tensor (m, *shape) of m i.i.d. units; merging uses the pairwise formula
    M2 = M2_a + M2_b + δ² n_a n_b / n, which stays accurate where the naive Σx² - n x̄² cancels.
    """

    def __init__(self) -> None:
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def update(self, batch: torch.Tensor) -> None:
        m = batch.shape[0]
        if m == 0:
            return
        # one pass over the batch in its own dtype (torch's var_mean is a stable two-pass/Welford
        # kernel); only the small per-element results are promoted to float64 for the merge
        var, b_mean = torch.var_mean(batch.detach(), dim=0, correction=0)
        b_mean, b_m2 = b_mean.to(torch.float64), var.to(torch.float64) * m
        if self.count == 0:
            self.count, self.mean, self.m2 = m, b_mean, b_m2
            return
        n = self.count + m
        delta = b_mean - self.mean
        self.mean = self.mean + delta * (m / n)
        self.m2 = self.m2 + b_m2 + delta**2 * (self.count * m / n)
        self.count = n

    def variance(self) -> torch.Tensor:
        """Unbiased sample variance of one unit (nan with fewer than two units)."""
        if self.count < 2:
            return torch.full_like(self.mean, float("nan"))
        return self.m2 / (self.count - 1)

    def stderr(self) -> torch.Tensor:
        """Standard error of the mean of the units."""
        return (self.variance() / self.count).sqrt()
