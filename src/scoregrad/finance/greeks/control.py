"""Control variates for the likelihood-ratio Greeks, with leave-one-out coefficients.

A control h(S) with known mean E_θ[h] is applied to every Greek by differentiating it like the
estimator: for the LR weight w_G the control is h·w_G - ∂_G E[h], used together with the score
w_G itself (an optimal baseline). Coefficients are fitted by least squares on the paths of every
*other* unit, so the estimator stays unbiased (Glasserman 2004, §4.1 and §7.3).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ...control_variates import ControlVariate
from ...core import loo_regress
from ...errors import ControlVariateError, EstimatorNotApplicable
from ..parameters import broadcast_shapes
from ..payoffs import ArithmeticAsian, GeometricAsian
from .exact import closed_form
from .names import FIRST, SECOND

__all__ = [
    "PathControlVariate",
    "terminal_price_cv",
    "geometric_asian_cv",
    "resolve_control_variate",
    "controls",
    "loo_regress",  # the core's, re-exported where the Greeks use it
]


class PathControlVariate(ControlVariate):
    """A control h(S) with known mean: ``h(prices)`` -> (n, *batch) undiscounted, ``mean(**params)``
    -> E_θ[h] as a differentiable torch expression of the model parameters.

    The Greeks use the control differentiated like the estimator: for LR weight w_G the control is
    h·w_G - ∂_G E[h]; its coefficient is fitted leave-one-out per Greek, jointly with the score
    (an optimal baseline), so the estimator stays unbiased.
    """

    def __init__(self, h: Callable, mean: Callable, name: str = "user"):
        super().__init__("loo")
        self.h, self.mean, self.name = h, mean, name

    def functions(self, x, f, dist):  # core interface: h(x) and E[h] under the distribution
        return self.h(dist.prices(x)), self.mean(
            spot=dist.spot, vol=dist.vol, rate=dist.rate, div=dist.div, maturity=dist.maturity
        )

    def __repr__(self):
        return f"PathControlVariate({self.name})"


def terminal_price_cv() -> PathControlVariate:
    """h = S_T, E[h] = S₀ e^{(r-q)T} (any model here: discounted prices are martingales)."""
    return PathControlVariate(
        lambda S: S[..., -1],
        lambda spot, rate, div, maturity, **_: spot * torch.exp((rate - div) * maturity),
        name="terminal",
    )


def geometric_asian_cv(payoff: ArithmeticAsian, model) -> PathControlVariate:
    """h = the geometric Asian payoff, same strike and dates; E[h] from its closed form under
    the model (Kemna-Vorst for GBM), undiscounted."""
    geo = GeometricAsian(payoff.strike, payoff.option)
    price = closed_form(model, geo)
    if price is None:
        raise EstimatorNotApplicable(
            "the geometric-Asian control variate needs a closed form of the geometric Asian "
            f"under {type(model).__name__} (GBM has one); use control_variate='terminal'."
        )

    def mean(spot, vol, rate, div, maturity, **_):
        p = price(spot=spot, vol=vol, rate=rate, div=div, maturity=maturity)
        return p * torch.exp(rate * maturity)

    return PathControlVariate(geo, mean, name="geometric-asian")


def resolve_control_variate(cv, payoff, model) -> PathControlVariate | None:
    """None, a ``PathControlVariate``, or one built from its name ('terminal', 'geometric')."""
    if cv is None or cv == "none":
        return None
    if isinstance(cv, PathControlVariate):
        return cv
    if cv == "terminal":
        return terminal_price_cv()
    if cv == "geometric":
        if not isinstance(payoff, ArithmeticAsian) or isinstance(payoff, GeometricAsian):
            raise EstimatorNotApplicable(
                "the 'geometric' control variate is for arithmetic Asian payoffs; use "
                "control_variate='terminal' for this payoff."
            )
        return geometric_asian_cv(payoff, model)
    raise ControlVariateError(
        "control_variate must be None, 'terminal', 'geometric' or a PathControlVariate, "
        f"got {cv!r}."
    )


def control_mean(sim):
    """E_θ[h] and its derivatives per Greek (theta: raw ∂_T), elementwise over the batch."""
    p = {k: v.detach().expand(sim.B_tot).clone().requires_grad_() for k, v in sim.params.items()}
    m = sim.cv.mean(**p).expand(sim.B_tot)
    firsts = sorted({"spot", "vol", "rate", "maturity"})
    g1 = dict(
        zip(
            firsts,
            torch.autograd.grad(
                m.sum(), [p[k] for k in firsts], create_graph=True, allow_unused=True
            ),
            strict=False,
        )
    )
    dm = {}
    for k in sim.names:
        if k in FIRST:
            t = g1[FIRST[k]]
        else:
            a, b = SECOND[k]
            t = g1[a]
            t = (
                torch.autograd.grad(t.sum(), p[b], retain_graph=True, allow_unused=True)[0]
                if t is not None and t.requires_grad
                else None
            )
        dm[k] = torch.zeros_like(m) if t is None else t.detach()
    return m.detach(), dm


def controls(sim, S, w) -> dict[str, torch.Tensor]:
    """{quantity: (c, *B_tot, k)} mean-zero controls for prices S and LR weights w."""
    h = torch.as_tensor(sim.cv.h(S))
    try:
        shape = broadcast_shapes(h.shape[1:], sim.B_tot)
        ok = h.dim() >= 1 and h.shape[0] == S.shape[0] and shape == sim.B_tot
    except (RuntimeError, ValueError):
        ok = False
    if not ok:
        raise ControlVariateError(
            f"control variate h returned shape {tuple(h.shape)}; it must return one value per "
            f"path and option, shape ({S.shape[0]}, *{tuple(sim.B_tot)})."
        )
    if sim.control_moments is None:
        with torch.enable_grad():
            sim.control_moments = control_mean(sim)
    m, dm = sim.control_moments
    ctrl = {"price": (h - m).expand(S.shape[0], *shape).unsqueeze(-1)}
    for k in sim.names:
        hk = (h * w[k] - dm[k]).expand(S.shape[0], *shape)
        sk = w[k].expand(S.shape[0], *shape)
        ctrl[k] = torch.stack([hk, sk], -1)
    return ctrl
