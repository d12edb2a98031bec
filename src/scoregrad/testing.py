"""Statistical assertions for Monte Carlo estimators (used by scoregrad's own tests, and yours).

An unbiased estimator's z-score (estimate - exact) / stderr is approximately N(0, 1). At a fixed
seed we assert |z| < Z_CRIT = 4.42, a two-sided false-alarm rate of 1e-5 per component: a suite
of up to 1000 such comparisons then fails by bad luck with probability below 1%.

* ``assert_close_in_se``, ``assert_grad_unbiased``, ``assert_value_unbiased``: one estimate with
  its own standard error against the exact answer.
* ``mean_z``: the z-score of the mean of independent replicate estimates (when one estimate has no
  standard error of its own, e.g. a training step's gradient).
* ``variance_z``: the z-score of a sample variance against an exact variance (variance claims).
* ``CrashOnce``: fault injection for remote evaluation (a worker that dies or fails once).

>>> import torch, scoregrad as sg
>>> p = sg.problems.get("normal_square", k=3.0)
>>> est = sg.estimate_grad(p.f, p.dist_fn, p.params(), n=20_000, seed=0)
>>> assert_grad_unbiased(est, p.exact()[1])
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Mapping

import torch

__all__ = [
    "Z_CRIT",
    "ALPHA",
    "assert_close_in_se",
    "assert_grad_unbiased",
    "assert_value_unbiased",
    "mean_z",
    "variance_z",
    "CrashOnce",
]

#: Φ⁻¹(1 - 1e-5 / 2): two-sided false-alarm rate 1e-5 per compared component
Z_CRIT = 4.42
#: the per-component false-alarm rate that Z_CRIT corresponds to
ALPHA = 1e-5


def assert_close_in_se(estimate, exact, stderr, what: str = "", z_crit: float = Z_CRIT) -> None:
    """|estimate - exact| <= z_crit · stderr per component, plus float-rounding slack (for
    estimators whose variance is exactly zero: a few units in the last place of the estimate's
    dtype, and at least 1e-9 relative).

    >>> assert_close_in_se(1.02, 1.0, 0.01)                 # z = 2
    >>> assert_close_in_se(torch.tensor(1.0), 1.0 + 1e-8, 0.0)  # exact up to float32 rounding
    """
    estimate = torch.as_tensor(estimate).detach()
    eps = torch.finfo(estimate.dtype).eps if estimate.is_floating_point() else 0.0
    estimate, exact, stderr = (
        torch.as_tensor(t).detach().to(torch.float64).cpu() for t in (estimate, exact, stderr)
    )
    exact = exact.expand_as(estimate)
    slack = max(1e-9, 4 * eps) * (1.0 + exact.abs())
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


def mean_z(samples: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    """z-scores of the mean of independent replicate estimates (rows) against the exact value:
    (mean - exact) / (sd / √R) per component.

    >>> reps = torch.tensor([[0.9], [1.1], [1.0], [1.2]])
    >>> round(float(mean_z(reps, torch.tensor([1.0]))), 3)
    0.775
    """
    m = samples.mean(0)
    se = samples.std(0) / samples.shape[0] ** 0.5
    return (m - exact) / se


def variance_z(per_sample: torch.Tensor, exact_var: torch.Tensor) -> torch.Tensor:
    """z-score of the sample variance of per-unit terms (rows) against an exact variance, with the
    standard error of the variance estimate taken from the spread of squared deviations.

    >>> g = torch.Generator().manual_seed(0)
    >>> x = 2.0 * torch.randn(100_000, 1, generator=g, dtype=torch.float64)   # variance 4
    >>> bool(variance_z(x, torch.tensor(4.0)).abs() < Z_CRIT)
    True
    """
    d2 = (per_sample - per_sample.mean(0)) ** 2
    return (d2.mean(0) - exact_var) / (d2.std(0) / per_sample.shape[0] ** 0.5)


class CrashOnce:
    """f, except that the first call to find the file ``marker`` removes it and then crashes.

    ``how="kill"`` kills the calling process with SIGKILL (as the out-of-memory killer would: a
    ``ProcessPoolExecutor`` is broken by it, a Dask worker is restarted by its nanny); ``"raise"``
    raises ``RuntimeError`` instead. Removing the file is atomic, so across any number of worker
    processes exactly one call crashes. Picklable when f is, so it runs on any executor: use it to
    check that remote evaluation survives a lost worker.

    >>> import tempfile, pathlib
    >>> marker = pathlib.Path(tempfile.mkdtemp()) / "crash"
    >>> _ = marker.write_text("")
    >>> f = CrashOnce(torch.square, marker, how="raise")
    >>> try:
    ...     f(torch.ones(2))
    ... except RuntimeError as e:
    ...     print(e)
    CrashOnce: injected failure
    >>> f(torch.ones(2)), marker.exists()
    (tensor([1., 1.]), False)
    """

    def __init__(self, f: Callable, marker, how: str = "kill"):
        if how not in ("kill", "raise"):
            raise ValueError(f"how must be 'kill' or 'raise', got {how!r}.")
        self.f, self.marker, self.how = f, os.fspath(marker), how

    def __call__(self, x):
        try:
            os.remove(self.marker)
        except FileNotFoundError:
            return self.f(x)
        if self.how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError("CrashOnce: injected failure")
