"""Closed forms (torch + autograd Greeks) against QuantLib's analytic engines: deterministic."""

import itertools

import pytest
import torch

from scoregrad.finance import (
    GBM,
    AssetDigital,
    Call,
    CashDigital,
    GeometricAsian,
    Merton,
    Put,
    exact_greeks,
)
from scoregrad.finance import closed_form as cf

from . import oracle

GRID = list(itertools.product((90.0, 100.0, 110.0), (95.0, 105.0), (0.15, 0.35), (73 / 365, 1.0)))


@pytest.mark.parametrize(
    "kind,payoff,option",
    [
        ("vanilla", Call, "call"),
        ("vanilla", Put, "put"),
        ("cash", CashDigital, "call"),
        ("cash", CashDigital, "put"),
        ("asset", AssetDigital, "call"),
    ],
)
def test_european_greeks_match_quantlib(kind, payoff, option):
    for spot, strike, vol, T in GRID:
        ql = oracle.european(kind, spot, strike, vol, 0.05, 0.02, T, option)
        p = payoff(strike) if payoff in (Call, Put) else payoff(strike, option)
        ex = exact_greeks(GBM(spot, vol, 0.05, 0.02, T), p)
        for g, v in ql.items():
            tol = 1e-6 * max(1.0, abs(v)) if g not in ("vanna", "volga") else 1e-4 * max(1, abs(v))
            assert abs(float(ex[g]) - v) < tol, (g, spot, strike, vol, T, float(ex[g]), v)


def test_broadie_glasserman_exact_values():
    ex = exact_greeks(GBM(100.0, 0.25, 0.1, 0.03, 0.2), Call(100.0))
    want = {"delta": 0.568, "vega": 17.446, "gamma": 0.035, "rho": 10.344, "theta": -14.370}
    for g, v in want.items():
        assert round(float(ex[g]), 3) == v


def test_geometric_asian_matches_quantlib_and_calendar_theta():
    """Price, delta, gamma, vega, rho match QuantLib. QuantLib's theta keeps the fixing dates
    fixed in calendar time (every date moves by dt); ours scales the dates with T (t_k = T φ_k).
    Shifting all dates in our closed form reproduces QuantLib's number."""
    for spot, strike, vol in itertools.product((90.0, 110.0), (95.0, 105.0), (0.2, 0.4)):
        ql = oracle.geometric_asian(spot, strike, vol, 0.05, 0.02, 1.0, 5)
        ex = exact_greeks(GBM(spot, vol, 0.05, 0.02, 1.0, dates=5), GeometricAsian(strike))
        for g in ("price", "delta", "gamma", "vega", "rho"):
            assert abs(float(ex[g]) - ql[g]) < 1e-6 * max(1, abs(ql[g])), g
        # calendar theta: -(d/dε) P with all dates t_k - ε (maturity too)
        eps = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
        phi = torch.arange(1, 6, dtype=torch.float64) / 5
        T = 1.0 - eps
        fr = (phi - eps) / T  # dates t_k - ε as fractions of the shortened maturity
        t = torch.tensor
        p = cf.geometric_asian(
            t(spot, dtype=torch.float64),
            strike,
            t(vol, dtype=torch.float64),
            t(0.05, dtype=torch.float64),
            t(0.02, dtype=torch.float64),
            T,
            fractions=fr,
        )
        (d,) = torch.autograd.grad(p, eps)
        assert abs(float(d) - ql["theta"]) < 1e-6 * max(1, abs(ql["theta"]))


def test_merton_reduces_to_black_scholes_and_matches_series_by_hand():
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    p = dict(spot=t(100.0), vol=t(0.2), rate=t(0.05), div=t(0.01), maturity=t(1.0))
    bs = cf.black_scholes(strike=100.0, **p)
    tiny = cf.merton_jump(
        strike=100.0, jump_rate=t(1e-12), jump_mean=t(-0.1), jump_vol=t(0.15), **p
    )
    assert abs(float(tiny - bs)) < 1e-9
    # direct conditional expectation: sum over jump counts of e^{-rT} E[(S_T - K)^+ | N = k]
    from scipy.stats import norm, poisson

    lam, mj, sj, S, K, r, q, s, T = 0.5, -0.1, 0.15, 100.0, 100.0, 0.05, 0.01, 0.2, 1.0
    kbar = torch.exp(t(mj + 0.5 * sj**2)).item() - 1
    total = 0.0
    for k in range(60):
        m = torch.log(t(S)).item() + (r - q - lam * kbar - 0.5 * s**2) * T + k * mj
        v = s**2 * T + k * sj**2
        d1 = (m - torch.log(t(K)).item() + v) / v**0.5
        cond = torch.exp(t(m + 0.5 * v)).item() * norm.cdf(d1) - K * norm.cdf(d1 - v**0.5)
        total += poisson.pmf(k, lam * T) * torch.exp(t(-r * T)).item() * cond
    got = exact_greeks(Merton(S, s, r, q, T, jump_rate=lam, jump_mean=mj, jump_vol=sj), Call(K))[
        "price"
    ]
    assert abs(float(got) - total) < 1e-9
