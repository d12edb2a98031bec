"""Statistical assertions for Monte Carlo estimators (used by scoregrad's own tests, and yours).

An unbiased estimator's z-score (estimate - exact) / stderr is approximately N(0, 1). At a fixed
seed we assert |z| < Z_CRIT = 4.42, a two-sided false-alarm rate of 1e-5 per component: a suite
of up to 1000 such comparisons then fails by bad luck with probability below 1%.

>>> import torch, scoregrad as sg
>>> p = sg.problems.get("normal_square", k=3.0)
>>> est = sg.estimate_grad(p.f, p.dist_fn, p.params(), n=20_000, seed=0)
>>> assert_grad_unbiased(est, p.exact()[1])
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

#: Φ⁻¹(1 - 1e-5 / 2): two-sided false-alarm rate 1e-5 per compared component
Z_CRIT = 4.42
#: the per-component false-alarm rate that Z_CRIT corresponds to
ALPHA = 1e-5


def assert_close_in_se(estimate, exact, stderr, what: str = "", z_crit: float = Z_CRIT) -> None:
    """|estimate - exact| <= z_crit · stderr per component, plus float-rounding slack (for
    estimators whose variance is exactly zero)."""
    estimate, exact, stderr = (
        torch.as_tensor(t).detach().to(torch.float64).cpu() for t in (estimate, exact, stderr)
    )
    exact = exact.expand_as(estimate)
    slack = 1e-9 * (1.0 + exact.abs())
    ok = (estimate - exact).abs() <= z_crit * stderr + slack
    if not bool(ok.all()):
        z = (estimate - exact) / stderr
        raise AssertionError(
            f"{what}: estimate {estimate.flatten().tolist()} vs exact {exact.flatten().tolist()}, "
            f"stderr {stderr.flatten().tolist()}, z = {z.flatten().tolist()} (|z| must be < {z_crit})"
        )


def assert_grad_unbiased(est, exact_grad: Mapping[str, torch.Tensor], what: str = "") -> None:
    """Every gradient component of a GradientEstimate within Z_CRIT standard errors of exact."""
    for k, g in est.grad.items():
        assert_close_in_se(g, exact_grad[k], est.stderr[k], what=f"{what} grad[{k}]")


def assert_value_unbiased(est, exact_value, what: str = "") -> None:
    """The value estimate of a GradientEstimate within Z_CRIT standard errors of exact."""
    assert_close_in_se(est.value, exact_value, est.value_stderr, what=f"{what} value")
