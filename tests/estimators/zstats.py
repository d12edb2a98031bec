"""Shared helpers for the estimator tests.

Unbiasedness is tested as a statistic: |z| < Z_MAX with Z_MAX = 4.42, a two-sided false-alarm
rate of 1e-5 per component at a fixed seed, so the suite's overall false-alarm chance stays < 1%.
"""

from __future__ import annotations

import torch

Z_MAX = 4.42


def assert_unbiased(est, exact, z_max=Z_MAX):
    """|z| < z_max per component; components with zero standard error must be exact."""
    for k, z in est.z_scores(exact).items():
        exact_k = torch.as_tensor(exact[k]).to(est.grad[k])
        zero = est.stderr[k] <= 1e-10 * (1 + exact_k.abs())  # exact up to rounding
        torch.testing.assert_close(est.grad[k][zero], exact_k[zero], atol=1e-9, rtol=1e-7)
        z = z[~zero]
        assert torch.isfinite(z).all(), f"{k}: non-finite z {z}"
        assert z.numel() == 0 or z.abs().max() < z_max, (
            f"{k}: z = {z.tolist()} (est {est.grad[k]}, exact {exact_k})"
        )


def mean_z(samples: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    """z-scores of the mean of independent replicate estimates (rows) against the exact value."""
    m = samples.mean(0)
    se = samples.std(0) / samples.shape[0] ** 0.5
    return (m - exact) / se


def variance_z(per_sample: torch.Tensor, exact_var: torch.Tensor) -> torch.Tensor:
    """z-score of the sample variance of per-unit terms (rows) against an exact variance, with the
    standard error of the variance estimate taken from the spread of squared deviations."""
    d2 = (per_sample - per_sample.mean(0)) ** 2
    return (d2.mean(0) - exact_var) / (d2.std(0) / per_sample.shape[0] ** 0.5)
