"""QuantLib oracles for the finance tests (QuantLib is a test dependency only).

Dates: maturities are whole numbers of days under Actual/365 Fixed, so QuantLib's year fractions
equal ours exactly. QuantLib's theta is ∂P/∂t per year = -∂P/∂T, our convention.
"""

from __future__ import annotations

import math

import pytest

ql = pytest.importorskip("QuantLib")

TODAY = ql.Date(2, 1, 2025)
DC = ql.Actual365Fixed()


def _setup(spot, vol, rate, div):
    ql.Settings.instance().evaluationDate = TODAY
    s = ql.SimpleQuote(spot)
    r = ql.SimpleQuote(rate)
    q = ql.SimpleQuote(div)
    v = ql.SimpleQuote(vol)
    rts = ql.YieldTermStructureHandle(ql.FlatForward(TODAY, ql.QuoteHandle(r), DC))
    qts = ql.YieldTermStructureHandle(ql.FlatForward(TODAY, ql.QuoteHandle(q), DC))
    vts = ql.BlackVolTermStructureHandle(
        ql.BlackConstantVol(TODAY, ql.NullCalendar(), ql.QuoteHandle(v), DC)
    )
    proc = ql.BlackScholesMertonProcess(ql.QuoteHandle(s), qts, rts, vts)
    return proc, s, v, r


def days(maturity: float) -> int:
    d = round(maturity * 365)
    assert abs(d / 365 - maturity) < 1e-12, "use maturities that are whole days / 365"
    return d


def _payoff(kind, strike, option, cash=1.0):
    typ = ql.Option.Call if option == "call" else ql.Option.Put
    if kind == "vanilla":
        return ql.PlainVanillaPayoff(typ, strike)
    if kind == "cash":
        return ql.CashOrNothingPayoff(typ, strike, cash)
    if kind == "asset":
        return ql.AssetOrNothingPayoff(typ, strike)
    raise ValueError(kind)


def european(kind, spot, strike, vol, rate, div, maturity, option="call", cash=1.0):
    """AnalyticEuropeanEngine: price, delta, gamma, vega, rho, theta; vanna and volga by central
    differences of QuantLib's own vega (step 1e-4 relative; error ~1e-8 relative)."""

    def build(s0, sig):
        proc, *_ = _setup(s0, sig, rate, div)
        opt = ql.VanillaOption(
            _payoff(kind, strike, option, cash), ql.EuropeanExercise(TODAY + days(maturity))
        )
        opt.setPricingEngine(ql.AnalyticEuropeanEngine(proc))
        return opt

    o = build(spot, vol)
    out = {
        "price": o.NPV(),
        "delta": o.delta(),
        "gamma": o.gamma(),
        "vega": o.vega(),
        "rho": o.rho(),
        "theta": o.theta(),
    }
    hs, hv = spot * 1e-4, vol * 1e-4
    out["vanna"] = (build(spot + hs, vol).vega() - build(spot - hs, vol).vega()) / (2 * hs)
    out["volga"] = (build(spot, vol + hv).vega() - build(spot, vol - hv).vega()) / (2 * hv)
    return out


def geometric_asian(spot, strike, vol, rate, div, maturity, m, option="call"):
    """AnalyticDiscreteGeometricAveragePriceAsianEngine on m equally spaced fixings."""
    proc, *_ = _setup(spot, vol, rate, div)
    d = days(maturity)
    assert d % m == 0
    fixings = [TODAY + d // m * (k + 1) for k in range(m)]
    opt = ql.DiscreteAveragingAsianOption(
        ql.Average.Geometric,
        1.0,
        0,
        fixings,
        _payoff("vanilla", strike, option),
        ql.EuropeanExercise(TODAY + d),
    )
    opt.setPricingEngine(ql.AnalyticDiscreteGeometricAveragePriceAsianEngine(proc))
    out = {"price": opt.NPV()}
    for g in ("delta", "gamma", "vega", "rho", "theta"):
        try:
            out[g] = getattr(opt, g)()
        except RuntimeError:
            pass
    return out


BGK = 0.5826  # Broadie-Glasserman-Kou: -ζ(1/2)/√(2π)


def barrier_bgk(
    spot, strike, barrier, vol, rate, div, maturity, m, kind="up-and-out", option="call"
):
    """Discretely monitored barrier (m dates) by the continuous AnalyticBarrierEngine with the
    BGK shift H·exp(±0.5826 σ √(T/m)); Greeks by central bump-and-reprice of that price."""
    up = kind.startswith("up")
    btype = {
        "up-and-out": ql.Barrier.UpOut,
        "up-and-in": ql.Barrier.UpIn,
        "down-and-out": ql.Barrier.DownOut,
        "down-and-in": ql.Barrier.DownIn,
    }[kind]

    def price(s0, sig, r=rate, T=maturity):
        H = barrier * math.exp((1 if up else -1) * BGK * sig * math.sqrt(T / m))
        proc, *_ = _setup(s0, sig, r, div)
        ql.Settings.instance().evaluationDate = TODAY
        # a continuous maturity: QuantLib needs a date, so only T on the day grid is exact
        opt = ql.BarrierOption(
            btype, H, 0.0, _payoff("vanilla", strike, option), ql.EuropeanExercise(TODAY + days(T))
        )
        opt.setPricingEngine(ql.AnalyticBarrierEngine(proc))
        return opt.NPV()

    hs, hv, hr = spot * 1e-3, vol * 1e-3, 1e-4
    p0 = price(spot, vol)
    return {
        "price": p0,
        "delta": (price(spot + hs, vol) - price(spot - hs, vol)) / (2 * hs),
        "gamma": (price(spot + hs, vol) - 2 * p0 + price(spot - hs, vol)) / hs**2,
        "vega": (price(spot, vol + hv) - price(spot, vol - hv)) / (2 * hv),
        "rho": (price(spot, vol, rate + hr) - price(spot, vol, rate - hr)) / (2 * hr),
    }


def heston(spot, vol, rate, div, maturity, strike, kappa, mean_var, xi, corr, option="call"):
    """AnalyticHestonEngine price (v0 = vol²)."""
    ql.Settings.instance().evaluationDate = TODAY
    rts = ql.YieldTermStructureHandle(ql.FlatForward(TODAY, rate, DC))
    qts = ql.YieldTermStructureHandle(ql.FlatForward(TODAY, div, DC))
    proc = ql.HestonProcess(
        rts, qts, ql.QuoteHandle(ql.SimpleQuote(spot)), vol**2, kappa, mean_var, xi, corr
    )
    opt = ql.VanillaOption(
        _payoff("vanilla", strike, option), ql.EuropeanExercise(TODAY + days(maturity))
    )
    opt.setPricingEngine(ql.AnalyticHestonEngine(ql.HestonModel(proc)))
    return opt.NPV()
