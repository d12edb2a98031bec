"""Closed-form prices and Greeks, the oracles the Monte Carlo estimates are tested against.

Closed forms are registered per (model class, payoff class), like
``torch.distributions.kl.register_kl``: ``register_closed_form(GBM, Call)`` decorates a function
``(model, payoff) -> price(**parameters)``; ``closed_form(model, payoff)`` finds the most specific
one (or None) and ``exact_greeks`` differentiates it by autograd.

>>> from scoregrad.finance import GBM, Call, Lookback
>>> m = GBM(spot=100.0, vol=0.25, rate=0.1, div=0.03, maturity=0.2)
>>> round(float(exact_greeks(m, Call(100.0), ("delta",))["delta"]), 4)
0.5684
>>> exact_greeks(m, Lookback()) is None
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .. import closed_form as cf
from ..models import GBM, Merton, Model
from ..payoffs import AssetDigital, Call, CashDigital, GeometricAsian, Payoff, Put
from .names import GREEK_NAMES

__all__ = ["closed_form", "exact_greeks", "register_closed_form"]

_CLOSED_FORMS: dict[tuple[type, type], Callable] = {}


def register_closed_form(model_cls: type, payoff_cls: type) -> Callable:
    """Register ``fn(model, payoff) -> price(**parameters)`` for a model and payoff class."""

    def deco(fn):
        _CLOSED_FORMS[(model_cls, payoff_cls)] = fn
        return fn

    return deco


def closed_form(model: Model, payoff: Payoff) -> Callable | None:
    """The registered price function for this model and payoff (most specific classes first),
    a differentiable torch expression of the parameters; None where none is known."""
    for m in type(model).__mro__:
        for p in type(payoff).__mro__:
            fn = _CLOSED_FORMS.get((m, p))
            if fn is not None:
                return fn(model, payoff)
    return None


def exact_greeks(
    model: Model, payoff: Payoff, names: Sequence[str] = GREEK_NAMES, dtype=torch.float64
) -> dict[str, torch.Tensor] | None:
    """Closed-form price and Greeks where one exists (GBM: vanilla, digitals, geometric Asian;
    Merton: vanilla), by autograd of ``closed_form``; None otherwise."""
    fn = closed_form(model, payoff)
    if fn is None:
        return None
    p = {k: torch.as_tensor(v, dtype=dtype) for k, v in model.values.items()}
    return cf.greeks(fn, p, [n for n in names if n in GREEK_NAMES])


@register_closed_form(GBM, Call)
@register_closed_form(GBM, Put)
def _black_scholes(model, payoff):
    return lambda **q: cf.black_scholes(strike=payoff.strike, option=payoff.name, **q)


@register_closed_form(GBM, CashDigital)
def _cash_digital(model, payoff):
    return lambda **q: cf.cash_digital(
        strike=payoff.strike, option=payoff.option, cash=payoff.cash, **q
    )


@register_closed_form(GBM, AssetDigital)
def _asset_digital(model, payoff):
    return lambda **q: cf.asset_digital(strike=payoff.strike, option=payoff.option, **q)


@register_closed_form(GBM, GeometricAsian)
def _geometric_asian(model, payoff):
    return lambda **q: cf.geometric_asian(
        strike=payoff.strike, option=payoff.option, fractions=model.fractions, **q
    )


@register_closed_form(Merton, Call)
@register_closed_form(Merton, Put)
def _merton(model, payoff):
    return lambda **q: cf.merton_jump(strike=payoff.strike, option=payoff.name, **q)
