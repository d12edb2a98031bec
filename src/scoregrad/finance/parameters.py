"""Model parameters checked once, with errors that name the parameter and the fix.

Every path model takes ``spot``, ``vol``, ``rate``, ``div`` and ``maturity`` (and Heston's or
Merton's own), each a number or a tensor (a batch of options). ``check_parameters`` refuses a NaN
or infinite value *by name* (a NaN rate would otherwise surface much later as "f returned
non-finite values"), and a value outside its domain (a spot, vol or maturity that is not > 0, a
correlation outside (-1, 1)). ``check_dtype`` refuses half precision, whose 5-bit exponent
overflows the squared payoffs behind every standard error (all NaN).

>>> check_parameters(spot=100.0, rate=float("nan"))
Traceback (most recent call last):
...
scoregrad.errors.ParameterError: rate = nan is not a number (NaN): every model parameter must be ...
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
import torch

from ..errors import ParameterError

__all__ = ["broadcast_shapes", "check_dtype", "check_parameters", "fractions_of", "DTYPES"]

#: dtypes a simulation may run in (half precision overflows the payoff's second moments)
DTYPES = (torch.float32, torch.float64)

# name: (domain test, on a float or elementwise on a tensor, what the parameter is and which values are allowed)
_DOMAINS = {
    "spot": (lambda t: t > 0, "the spot price must be > 0 (prices are lognormal)"),
    "vol": (
        lambda t: t > 0,
        "volatility must be > 0; for a deterministic asset use a tiny vol such as 1e-4 "
        "(LR weights scale like 1/vol, so prefer the pathwise method as vol -> 0)",
    ),
    "maturity": (
        lambda t: t > 0,
        "maturity must be > 0 years; an expired option is worth its payoff, with no simulation",
    ),
    "rate": (None, "the risk-free rate is a continuously compounded rate per year, e.g. 0.05"),
    "div": (None, "the dividend yield is a continuous yield per year, e.g. 0.02 (0 for none)"),
    "kappa": (lambda t: t > 0, "the mean-reversion speed must be > 0"),
    "mean_var": (lambda t: t > 0, "the long-run variance must be > 0"),
    "xi": (lambda t: t > 0, "the volatility of variance must be > 0"),
    "corr": (lambda t: abs(t) < 1, "the correlation must lie in (-1, 1)"),
    "jump_rate": (lambda t: t >= 0, "the jump intensity must be >= 0"),
    "jump_mean": (None, "the mean log jump size is a real number, e.g. -0.1"),
    "jump_vol": (
        lambda t: t > 0,
        "the jump-size volatility must be > 0 (for fixed jump sizes use a tiny value)",
    ),
}


def broadcast_shapes(*shapes) -> torch.Size:
    """torch.broadcast_shapes without its first-call import of sympy (about a second)."""
    if not any(shapes):  # every one a scalar: the common case, without NumPy
        return torch.Size()
    return torch.Size(np.broadcast_shapes(*[tuple(s) for s in shapes]))


def _shown(t: torch.Tensor) -> str:
    vals = t.flatten()[:4].tolist()
    return f"{vals[0]:g}" if t.numel() == 1 else str(vals)


def check_parameters(**values) -> None:
    """Raise a ``ParameterError`` naming the first parameter that is NaN, infinite or outside its
    domain (see ``_DOMAINS``); numbers are checked without building tensors."""
    for name, v in values.items():
        test, what = _DOMAINS[name]
        if isinstance(v, Real):  # the common case, checked in Python
            x = float(v)
            finite = math.isfinite(x)
            inside = finite and (test is None or bool(test(x)))
            t = None
        else:
            t = torch.as_tensor(v).detach()
            if not t.is_floating_point():
                t = t.double()
            ok = torch.isfinite(t).all()
            if test is not None:
                ok = ok & test(t).all()
            if bool(ok):  # one host sync per tensor parameter
                continue
            finite = bool(torch.isfinite(t).all())
            inside = False
        if inside:
            continue
        shown = f"{float(v):g}" if t is None else _shown(t)
        if not finite:
            kind = "not a number (NaN)" if "nan" in shown else "infinite"
            raise ParameterError(
                f"{name} = {shown} is {kind}: every model parameter must be a finite real "
                f"number; {what}."
            )
        raise ParameterError(f"{name} = {shown} is invalid: {what}.")


def check_dtype(dtype: torch.dtype) -> None:
    """Refuse dtypes the simulation cannot run in, naming the ones it can."""
    if dtype in DTYPES:
        return
    if dtype in (torch.float16, torch.bfloat16):
        raise ParameterError(
            f"dtype={dtype} is not supported: half precision overflows the squared payoffs "
            "behind the standard errors (max 65504 for float16, 3 significant digits for "
            "bfloat16) and returns NaN. Fix: use dtype=torch.float32 (as fast on most hardware) "
            "or torch.float64."
        )
    raise ParameterError(
        f"dtype must be torch.float32 or torch.float64, got {dtype!r} (paths are real numbers)."
    )


def fractions_of(dates) -> torch.Tensor:
    """Monitoring dates as fractions of maturity: an int m gives k/m, k = 1..m; a sequence of
    increasing fractions in (0, 1] ending at 1 is used as given."""
    if isinstance(dates, int):
        if dates < 1:
            raise ParameterError(
                f"dates must be a positive number of monitoring dates, got {dates}."
            )
        return torch.arange(1, dates + 1, dtype=torch.float64) / dates
    f = torch.as_tensor(dates, dtype=torch.float64).flatten()
    ok = f.numel() > 0 and bool((f > 0).all()) and bool((f.diff() > 0).all())
    if not ok or abs(float(f[-1]) - 1.0) > 1e-12:
        raise ParameterError(
            f"dates must be increasing fractions of maturity in (0, 1] ending at 1, got "
            f"{f.tolist()}. Fix: e.g. dates=[0.25, 0.5, 0.75, 1.0], or dates=4."
        )
    return f
