"""Closed-form prices in torch, so that every Greek is an exact autograd derivative.

* ``black_scholes``: European call/put with dividend yield q (Merton 1973):
  C = S e^{-qT} N(d₁) - K e^{-rT} N(d₂), d₁,₂ = (log(S/K) + (r - q ± σ²/2)T)/(σ√T).
* ``cash_digital`` (K e^{-rT}... pays ``cash``: cash·e^{-rT} N(±d₂)) and ``asset_digital``
  (S e^{-qT} N(±d₁)).
* ``geometric_asian``: the discretely monitored geometric-average price option (Kemna & Vorst
  1990): log G = mean_k log S_{t_k} is normal with mean log S + (r - q - σ²/2) t̄ and variance
  σ²/m² Σ_{j,k} min(t_j, t_k), so its price is a Black-type formula.
* ``merton_jump``: Merton (1976) jump-diffusion call/put as a Poisson-weighted series of
  Black-Scholes prices (``terms`` terms).

``greeks(price_fn, params, names)`` differentiates any of them (first and second order).

>>> import torch
>>> p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in
...      dict(spot=100.0, vol=0.25, rate=0.1, div=0.03, maturity=0.2).items()}
>>> g = greeks(lambda **q: black_scholes(strike=100.0, **q), p, ("delta", "gamma", "vega"))
>>> [round(float(g[k]), 3) for k in ("delta", "gamma", "vega")]   # Broadie-Glasserman Table 1
[0.568, 0.035, 17.446]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch

from .parameters import broadcast_shapes

__all__ = [
    "black_scholes",
    "cash_digital",
    "asset_digital",
    "geometric_asian",
    "merton_jump",
    "greeks",
    "GREEKS",
]

#: Greek -> (parameter(s), sign); theta is -∂P/∂T
GREEKS = {
    "delta": (("spot",), 1.0),
    "gamma": (("spot", "spot"), 1.0),
    "vega": (("vol",), 1.0),
    "rho": (("rate",), 1.0),
    "theta": (("maturity",), -1.0),
    "vanna": (("spot", "vol"), 1.0),
    "volga": (("vol", "vol"), 1.0),
}


def _ncdf(x):
    return 0.5 * torch.special.erfc(-x / math.sqrt(2.0))


def _t(x, like):
    return torch.as_tensor(x, dtype=like.dtype, device=like.device)


def _d12(spot, strike, vol, rate, div, maturity):
    sq = vol * torch.sqrt(maturity)
    d1 = (torch.log(spot / strike) + (rate - div + 0.5 * vol**2) * maturity) / sq
    return d1, d1 - sq


def black_scholes(spot, strike, vol, rate, div, maturity, option="call", **_):
    """Black-Scholes-Merton price of a European call or put with continuous dividend yield."""
    strike = _t(strike, spot)
    d1, d2 = _d12(spot, strike, vol, rate, div, maturity)
    df, dq = torch.exp(-rate * maturity), torch.exp(-div * maturity)
    if option == "call":
        return spot * dq * _ncdf(d1) - strike * df * _ncdf(d2)
    return strike * df * _ncdf(-d2) - spot * dq * _ncdf(-d1)


def cash_digital(spot, strike, vol, rate, div, maturity, option="call", cash=1.0, **_):
    """Cash-or-nothing: cash·e^{-rT} N(d₂) (call) or N(-d₂) (put)."""
    _, d2 = _d12(spot, _t(strike, spot), vol, rate, div, maturity)
    sgn = 1.0 if option == "call" else -1.0
    return cash * torch.exp(-rate * maturity) * _ncdf(sgn * d2)


def asset_digital(spot, strike, vol, rate, div, maturity, option="call", **_):
    """Asset-or-nothing: S e^{-qT} N(d₁) (call) or N(-d₁) (put)."""
    d1, _ = _d12(spot, _t(strike, spot), vol, rate, div, maturity)
    sgn = 1.0 if option == "call" else -1.0
    return spot * torch.exp(-div * maturity) * _ncdf(sgn * d1)


def geometric_asian(spot, strike, vol, rate, div, maturity, fractions, option="call", **_):
    """Discrete geometric-average price option on dates t_k = T φ_k (Kemna & Vorst 1990)."""
    phi = torch.as_tensor(fractions).to(spot)
    m = phi.numel()
    tbar = maturity * phi.mean()
    cov = maturity * torch.minimum(phi.unsqueeze(0), phi.unsqueeze(1)).sum() / m**2
    mean = torch.log(spot) + (rate - div - 0.5 * vol**2) * tbar
    var = vol**2 * cov
    K = _t(strike, spot)
    sd = torch.sqrt(var)
    d1 = (mean - torch.log(K) + var) / sd
    d2 = d1 - sd
    fwd = torch.exp(mean + 0.5 * var)
    df = torch.exp(-rate * maturity)
    if option == "call":
        return df * (fwd * _ncdf(d1) - K * _ncdf(d2))
    return df * (K * _ncdf(-d2) - fwd * _ncdf(-d1))


def merton_jump(
    spot,
    strike,
    vol,
    rate,
    div,
    maturity,
    jump_rate,
    jump_mean,
    jump_vol,
    option="call",
    terms=80,
    **_,
):
    """Merton (1976) price: Σ_k e^{-λ'T}(λ'T)^k/k! · BS(σ_k, r_k), λ' = λ(1 + k̄),
    σ_k² = σ² + kσ_J²/T, r_k = r - λk̄ + k log(1 + k̄)/T."""
    kbar = torch.exp(jump_mean + 0.5 * jump_vol**2) - 1
    lam2 = jump_rate * (1 + kbar)
    bs = broadcast_shapes(
        *(
            torch.as_tensor(t).shape
            for t in (spot, strike, vol, rate, div, maturity, jump_rate, jump_mean, jump_vol)
        )
    )
    k = torch.arange(terms, dtype=spot.dtype, device=spot.device).reshape(terms, *[1] * len(bs))
    w = torch.exp(-lam2 * maturity + k * torch.log(lam2 * maturity) - torch.lgamma(k + 1))
    sig_k = torch.sqrt(vol**2 + k * jump_vol**2 / maturity)
    r_k = rate - jump_rate * kbar + k * torch.log1p(kbar) / maturity
    # the Poisson weights at λ' absorb the change of discounting from r_k back to r
    return (w * black_scholes(spot, strike, sig_k, r_k, div, maturity, option)).sum(0)


def greeks(price_fn: Callable, params: Mapping[str, torch.Tensor], names=tuple(GREEKS)) -> dict:
    """Price and Greeks of ``price_fn(**params)`` by autograd (elementwise over a batch).

    Returns {'price': P, 'delta': ∂P/∂S, ..., 'theta': -∂P/∂T, 'vanna': ∂²P/∂S∂σ, ...}.
    """
    with torch.no_grad():
        shape = price_fn(**params).shape  # the batch (strikes too): one leaf element per option
    leaves = {k: v.detach().expand(shape).clone().requires_grad_() for k, v in params.items()}
    price = price_fn(**leaves)
    out = {"price": price.detach()}
    first = {}
    for name in names:
        ps, sign = GREEKS[name]
        a = ps[0]
        if a not in first:
            (g,) = torch.autograd.grad(price.sum(), leaves[a], create_graph=True, retain_graph=True)
            first[a] = g
        if len(ps) == 1:
            out[name] = sign * first[a].detach()
        else:
            (h,) = torch.autograd.grad(
                first[a].sum(), leaves[ps[1]], retain_graph=True, allow_unused=True
            )
            out[name] = sign * (h if h is not None else torch.zeros_like(price)).detach()
    return {k: v.expand(price.shape) if v.shape != price.shape else v for k, v in out.items()}
