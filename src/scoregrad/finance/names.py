"""The names the ``greeks`` command offers, importable without torch (so ``--help`` is fast)."""

from __future__ import annotations

__all__ = ["PAYOFF_NAMES", "MODEL_NAMES"]

PAYOFF_NAMES = (
    "call",
    "put",
    "cash-digital",
    "asset-digital",
    "barrier",
    "asian",
    "geometric-asian",
    "lookback",
)
#: the keys of ``models.MODELS`` (tests check the two agree)
MODEL_NAMES = ("gbm", "heston", "merton")
