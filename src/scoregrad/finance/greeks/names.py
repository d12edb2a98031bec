"""The Greeks by name, and the model parameters each one differentiates.

theta is -∂P/∂T (per year); gamma, vanna and volga are second derivatives in (spot, spot),
(spot, vol) and (vol, vol).
"""

from __future__ import annotations

__all__ = ["GREEK_NAMES", "DEFAULT_GREEKS", "METHODS", "FIRST", "SECOND", "parameters_of"]

GREEK_NAMES = ("delta", "gamma", "vega", "rho", "theta", "vanna", "volga")
DEFAULT_GREEKS = ("delta", "gamma", "vega", "rho", "theta")
METHODS = ("lr", "pathwise", "mixed")
#: first-order Greeks: the parameter each differentiates
FIRST = {"delta": "spot", "vega": "vol", "rho": "rate", "theta": "maturity"}
#: second-order Greeks: the two parameters, differentiated in this order
SECOND = {"gamma": ("spot", "spot"), "vanna": ("spot", "vol"), "volga": ("vol", "vol")}


def parameters_of(greek: str) -> tuple[str, ...]:
    """The model parameters ``greek`` differentiates, outermost first: ('spot',) for delta."""
    return SECOND.get(greek, (FIRST.get(greek),))
