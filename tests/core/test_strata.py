"""``core.strata.stratified_rows``: its rows carry the stratified mean and standard error exactly,
and that standard error is calibrated (z-tests at fixed seeds, |z| < Z_CRIT: false alarms 1e-5)."""

from __future__ import annotations

import math

import pytest
import torch

from scoregrad.core.strata import stratified_rows
from scoregrad.errors import SampleSizeError
from scoregrad.testing import Z_CRIT


def _cochran(groups, weights):
    mean = sum(w * g.mean(0) for g, w in zip(groups, weights))
    var = sum(w**2 * g.var(0) / g.shape[0] for g, w in zip(groups, weights))
    return mean, var.sqrt()


def test_rows_carry_the_stratified_mean_and_stderr_exactly():
    gen = torch.Generator().manual_seed(0)
    groups = [torch.randn(m, 3, generator=gen, dtype=torch.float64) * s + c
              for m, s, c in [(5, 1.0, 0.0), (40, 3.0, 1.0), (7, 0.1, -2.0)]]  # fmt: skip
    weights = [0.2, 0.5, 0.3]
    y = stratified_rows(groups, weights)
    mean, se = _cochran(groups, weights)
    assert y.shape == (52, 3)
    torch.testing.assert_close(y.mean(0), mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(y.std(0) / math.sqrt(52), se, rtol=1e-12, atol=1e-12)


def test_a_single_group_is_returned_as_it_is():
    g = torch.arange(6.0).reshape(3, 2)
    assert stratified_rows([g], [1.0]) is g


def test_zero_weight_group_adds_nothing():
    a, b = torch.tensor([[1.0], [2.0], [6.0]]), torch.tensor([[100.0], [-50.0]])
    y = stratified_rows([a, b], [1.0, 0.0])
    assert float(y.mean()) == pytest.approx(3.0)
    assert float(y.std() / math.sqrt(5)) == pytest.approx(float(a.std() / math.sqrt(3)))


def test_bad_input_is_refused():
    with pytest.raises(SampleSizeError, match="at least 2 rows"):
        stratified_rows([torch.ones(1, 1), torch.ones(3, 1)], [0.5, 0.5])
    with pytest.raises(SampleSizeError, match="one weight per group"):
        stratified_rows([torch.ones(2, 1)], [0.5, 0.5])


def test_stderr_is_calibrated_and_mean_unbiased():
    """2000 replicates of three strata of different spreads and sizes: the mean of the stratified
    estimates is unbiased for Σ w_s μ_s, and the mean reported variance matches the spread of the
    estimates (z of the ratio from the replicates' fourth moments)."""
    gen = torch.Generator().manual_seed(1)
    reps, sizes, sds, mus, weights = 2000, [4, 30, 12], [1.0, 5.0, 0.5], [1.0, -2.0, 3.0], [
        0.1, 0.6, 0.3]  # fmt: skip
    est, var = [], []
    for _ in range(reps):
        groups = [mu + sd * torch.randn(m, 1, generator=gen, dtype=torch.float64)
                  for m, sd, mu in zip(sizes, sds, mus)]  # fmt: skip
        y = stratified_rows(groups, weights)
        est.append(float(y.mean()))
        var.append(float(y.var() / y.shape[0]))
    est, var = torch.tensor(est, dtype=torch.float64), torch.tensor(var, dtype=torch.float64)
    exact_mean = sum(w * mu for w, mu in zip(weights, mus))
    exact_var = sum(w**2 * sd**2 / m for w, sd, m in zip(weights, sds, sizes))
    z_mean = (est.mean() - exact_mean) / (est.std() / math.sqrt(reps))
    z_var = (var.mean() - exact_var) / (var.std() / math.sqrt(reps))
    assert abs(float(z_mean)) < Z_CRIT
    assert abs(float(z_var)) < Z_CRIT
