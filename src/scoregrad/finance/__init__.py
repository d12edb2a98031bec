"""Option prices and Greeks by Monte Carlo: likelihood ratio (the score-function estimator),
pathwise and mixed estimators, with standard errors, validated against closed forms and QuantLib.

>>> from scoregrad.finance import GBM, CashDigital, estimate_greeks
>>> res = estimate_greeks(GBM(spot=100.0, vol=0.2, rate=0.05, maturity=1.0), CashDigital(100.0),
...                       n=200_000, method="mixed", greeks=("delta",), seed=0)
>>> round(float(res.greeks["delta"]), 2)          # exact e^{-rT} φ(d₂)/(Sσ√T) = 0.0188
0.02
"""

from ..app.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    submodules=("closed_form", "models", "parameters", "paths", "payoffs", "run"),
    names={
        ".run": ("GreeksConfig", "run_greeks"),
        ".closed_form": ("GREEKS",),
        ".greeks": (
            "GREEK_NAMES",
            "GreeksResult",
            "PathControlVariate",
            "estimate_greeks",
            "exact_greeks",
        ),
        ".models": ("GBM", "GBMPaths", "Heston", "HestonPaths", "Merton", "MertonPaths", "Model"),
        ".payoffs": (
            "ArithmeticAsian",
            "AssetDigital",
            "Barrier",
            "Call",
            "CashDigital",
            "Custom",
            "GeometricAsian",
            "Lookback",
            "Payoff",
            "Put",
        ),
    },
)
