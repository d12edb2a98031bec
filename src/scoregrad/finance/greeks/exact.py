"""Closed-form prices and Greeks, the oracles the Monte Carlo estimates are tested against."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .. import closed_form as cf
from ..models import GBM, Merton, Model
from ..payoffs import AssetDigital, Call, CashDigital, GeometricAsian, Payoff, Put
from .names import GREEK_NAMES

__all__ = ["exact_greeks"]


def exact_greeks(
    model: Model, payoff: Payoff, names: Sequence[str] = GREEK_NAMES, dtype=torch.float64
) -> dict[str, torch.Tensor] | None:
    """Closed-form price and Greeks where one exists (GBM: vanilla, digitals, geometric Asian;
    Merton: vanilla), by autograd of ``closed_form``; None otherwise."""
    p = {k: torch.as_tensor(v, dtype=dtype) for k, v in model.values.items()}
    fn = None
    if isinstance(model, GBM) and isinstance(payoff, (Call, Put)):
        fn = lambda **q: cf.black_scholes(strike=payoff.strike, option=payoff.name, **q)  # noqa
    elif isinstance(model, GBM) and isinstance(payoff, CashDigital):
        fn = lambda **q: cf.cash_digital(
            strike=payoff.strike,
            option=payoff.option,  # noqa
            cash=payoff.cash,
            **q,
        )
    elif isinstance(model, GBM) and isinstance(payoff, AssetDigital):
        fn = lambda **q: cf.asset_digital(strike=payoff.strike, option=payoff.option, **q)  # noqa
    elif isinstance(model, GBM) and isinstance(payoff, GeometricAsian):
        fn = lambda **q: cf.geometric_asian(
            strike=payoff.strike,
            option=payoff.option,  # noqa
            fractions=model.fractions,
            **q,
        )
    elif isinstance(model, Merton) and isinstance(payoff, (Call, Put)):
        fn = lambda **q: cf.merton_jump(strike=payoff.strike, option=payoff.name, **q)  # noqa
    if fn is None:
        return None
    return cf.greeks(fn, p, [n for n in names if n in GREEK_NAMES])
