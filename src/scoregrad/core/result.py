"""The result of ``estimate_grad``: unit moments turned into a ``GradientEstimate``.

Block means ĝ_u of the per-sample terms are the independent units (m of them); the estimate is
their mean and its standard error sd(ĝ_u)/√m, from shifted sums finished in float64
(``core.stats``). Gradients and standard errors come back in the parameters' dtype and shape, the
value in the wider of f's own dtype and the parameters'.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .chunks import unit_means
from .shapes import stopped
from .stats import shifted_moments, shifted_moments_of

__all__ = [
    "GradientEstimate",
    "TooFewUnitsWarning",
    "Layout",
    "Moments",
    "chunk_moments",
    "moments",
    "gradient_estimate",
]


_PACKAGE = str(Path(__file__).resolve().parents[1])


def _outside_level() -> int:
    """The ``stacklevel`` (for a warning raised by the caller) of the first frame outside the
    package."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


class TooFewUnitsWarning(UserWarning):
    """An estimate rests on a single independent unit, so its standard errors are undefined."""


@dataclass
class GradientEstimate:
    """A Monte Carlo estimate of E[f] and of its gradient, with standard errors.

    Attributes: ``value`` and ``value_stderr`` (0-d tensors); ``grad`` and ``stderr`` (dicts keyed
    like ``params``, each shaped like its parameter); ``n`` samples drawn; ``n_evals`` evaluations
    of f; ``n_units`` independent units behind the standard errors; ``estimator`` (its repr);
    ``seconds`` (wall time); ``per_sample`` (unit-level gradient terms, when asked for);
    ``auto`` (with ``estimator="auto"``: the ``AutoReport`` of the choice, its pilot and cost).
    """

    value: torch.Tensor
    value_stderr: torch.Tensor
    grad: dict[str, torch.Tensor]
    stderr: dict[str, torch.Tensor]
    n: int
    n_evals: int
    n_units: int
    estimator: str = ""
    seconds: float = 0.0
    per_sample: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    auto: object | None = field(default=None, repr=False)

    @property
    def variance_per_sample(self) -> dict[str, torch.Tensor]:
        """n · stderr²: the variance of a one-sample estimator with the same efficiency."""
        return {k: s**2 * self.n for k, s in self.stderr.items()}

    def z_scores(self, exact: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """(estimate - exact) / stderr per parameter element: ~N(0, 1) for an unbiased estimator."""
        return {
            k: (self.grad[k] - torch.as_tensor(exact[k]).to(self.grad[k])) / self.stderr[k]
            for k in self.grad
        }

    def __repr__(self) -> str:
        def fmt(t):
            t = t.detach()
            return f"{t.item():.6g}" if t.numel() == 1 else str(t.flatten()[:6].tolist())

        grads = ", ".join(f"{k}: {fmt(g)} ± {fmt(self.stderr[k])}" for k, g in self.grad.items())
        return (
            f"GradientEstimate(value={fmt(self.value)} ± {fmt(self.value_stderr)}, grad={{{grads}}}, "
            f"n={self.n}, n_evals={self.n_evals}, estimator={self.estimator})"
        )


@dataclass
class Moments:
    """Means and standard errors of the value and of every gradient element over ``units``, as
    two flat vectors laid out like ``layout`` (the value first, then each gradient's elements, in
    order): float64, or the units' own dtype for a few units, where one var_mean is exact enough.
    """

    mean: torch.Tensor
    stderr: torch.Tensor
    layout: Layout
    units: int
    per_sample: dict[str, torch.Tensor] | None = None

    @property
    def grad(self) -> dict[str, torch.Tensor]:
        """{name: mean gradient} (views of ``mean``, in its dtype)."""
        return self.layout.unflatten(self.mean[1:])


class Layout:
    """Where each gradient sits in the flat vectors of ``Moments``: names, widths and shapes.
    Built once per preparation (it depends on the parameters' shapes only)."""

    def __init__(self, params: Mapping[str, torch.Tensor]):
        self.names = list(params)
        self.shapes = [params[k].shape for k in self.names]
        self.widths = [params[k].numel() for k in self.names]
        self.size = sum(self.widths)
        self._with_value = [1, *self.widths]

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """{name: that gradient's elements of ``flat`` (the gradients only), in its shape}."""
        parts = flat.split_with_sizes(self.widths) if len(self.widths) > 1 else (flat,)
        return self._shaped(parts)

    def split(self, flat: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(the value, 0-d; {name: gradient}) of a whole flat vector (value first), in one split."""
        value, *parts = flat.split_with_sizes(self._with_value)
        return value.view(()), self._shaped(parts)

    def _shaped(self, parts) -> dict[str, torch.Tensor]:
        return {
            k: p if p.shape == shape else p.view(shape)
            for k, p, shape in zip(self.names, parts, self.shapes, strict=True)
        }


#: up to this many units, the moments come from one var_mean (fewest operations; torch's Welford
#: loop is exact enough there, and slow for many rows)
_FEW_UNITS = 64


def chunk_moments(c, layout: Layout, keep: bool) -> Moments:
    """Estimate, standard error and unit count of the value and every gradient of one chunk
    (``Contributions`` c), as flat vectors (``Moments``)."""
    units_v = unit_means(c.values, c.block)
    units_g = [unit_means(c.grads[k], c.block) for k in layout.names]
    m = units_v.shape[0]
    per_sample = {k: u.detach() for k, u in zip(layout.names, units_g)} if keep else None
    # one pass over a concatenation on accelerators (kernel launches dominate there) and for a few
    # units; tensor by tensor on the CPU otherwise (no copy, and column reductions of a
    # concatenation are strided), the small sums then finished together
    if m <= _FEW_UNITS or units_v.device.type != "cpu":
        flat = torch.cat([units_v.reshape(m, 1)] + [_rows(u, m) for u in units_g], 1)
        if m <= _FEW_UNITS:  # one reduction in the units' dtype: a float64 round trip adds nothing
            sd, mean = torch.std_mean(stopped(flat), dim=0, correction=1 if m > 1 else 0)
            se = sd / math.sqrt(m) if m > 1 else torch.full_like(sd, float("nan"))
        else:
            mean, se = moments(flat)
    else:
        mean, se = moments_of([units_v, *units_g])
    return Moments(mean, se, layout, m, per_sample)


def _rows(u: torch.Tensor, m: int) -> torch.Tensor:
    return u if u.dim() == 2 else u.reshape(m, -1)


def moments(units: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, standard error of the mean) over axis 0, in float64."""
    count, mean, m2 = shifted_moments(units)
    return mean, _stderr(count, m2)


def moments_of(batches: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``moments`` of several tensors with the same number of rows, each reduced on its own, the
    small results flattened and finished together: flat (mean, standard error), float64."""
    count, mean, m2 = shifted_moments_of(batches)
    return mean, _stderr(count, m2)


def _stderr(count: int, m2: torch.Tensor) -> torch.Tensor:
    var = m2 / (count - 1) if count > 1 else torch.full_like(m2, float("nan"))
    return (var / count).sqrt()


def gradient_estimate(
    mom: Moments,
    params,
    *,
    n: int,
    n_evals: int,
    value_dtype,
    estimator: str,
    seconds: float,
    auto=None,
) -> GradientEstimate:
    """The ``GradientEstimate`` of moments: gradients in the parameters' dtype and shapes, the value
    in ``value_dtype`` (f's own precision, never narrower than the parameters')."""
    dtype = next(iter(params.values())).dtype
    if mom.units < 2:
        warnings.warn(
            f"this estimate rests on {mom.units} independent unit (n={n}, {estimator}), so its "
            "standard errors are NaN: a standard error needs at least two units. Fix: a larger n "
            "(at least two of the estimator's units: samples, antithetic pairs, QMC replicates or "
            "groups of K).",
            TooFewUnitsWarning,
            stacklevel=_outside_level(),  # reported at the caller's line, whichever door
        )
    mean, se = _to(mom.mean, dtype), _to(mom.stderr, dtype)
    value, grad = mom.layout.split(mean)
    value_se, stderr = mom.layout.split(se)
    if value_dtype != dtype:  # the value in f's own, wider precision
        value, value_se = mom.mean[0], mom.stderr[0]
    return GradientEstimate(
        value=_to(value, value_dtype),
        value_stderr=_to(value_se, value_dtype),
        grad=grad,
        stderr=stderr,
        n=n,
        n_evals=n_evals,
        n_units=mom.units,
        estimator=estimator,
        seconds=seconds,
        per_sample=mom.per_sample,
        auto=auto,
    )


def _to(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return t if t.dtype == dtype else t.to(dtype)
