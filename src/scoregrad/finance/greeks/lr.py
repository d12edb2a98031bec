"""The likelihood-ratio (score-function) Greeks, per path.

∂_a P = E[e^{-rT} (f - b) ∂_a log p] + (∂_a e^{-rT}) E[f], and for a, b in {spot, vol}
∂_a∂_b P = E[e^{-rT} (f - b)(∂_a log p ∂_b log p + ∂_a∂_b log p)] (gamma, vanna, volga). The
scores are the core's (``SampleModel.expand(...).score(create_graph=True)``, the per-path form of
the DiCE derivatives of ``scoregrad.expectation``), or the path distribution's closed-form weights
from its standard normals where it declares them (GBM; tested equal). b is a leave-one-out
baseline (``scoregrad.baselines.LeaveOneOut``): any b independent of the path keeps first *and*
second orders unbiased, since E[∂ log p] = E[∂_a log p ∂_b log p + ∂_a∂_b log p] = 0
(Broadie & Glasserman 1996; Glasserman 2004, §7.3).
"""

from __future__ import annotations

import torch

from ...baselines import LeaveOneOut
from ...core import SampleModel
from .control import controls
from .names import FIRST, SECOND
from .simulation import Draw, lift

__all__ = ["lr_weights", "lr_assemble", "chunk_lr", "chunk_lr_given"]


def lr_weights(sim, draw: Draw, need: set) -> dict[str, torch.Tensor]:
    """{greek: (c, 1.., *B_dist)} raw LR weights (theta: ∂_T log p, not negated), lifted to
    broadcast against the option batch."""
    c = draw.size
    w = _weights(sim, draw, need)
    return {k: lift(v.expand(c, *sim.B_dist), sim.extra) for k, v in w.items()}


def _weights(sim, draw, need):
    if sim.analytic:
        return sim.dist0.lr_weights(draw.z, need)
    second = bool(need & set(SECOND))
    pmodel = SampleModel.expand(sim.model.dist, sim.pb, draw.x.shape[0])
    s = pmodel.score(draw.x, create_graph=second)
    L = pmodel.leaves
    w = {g: s[p] for g, p in FIRST.items() if g in need}
    if second:
        ds = torch.autograd.grad(s["spot"].sum(), [L["spot"], L["vol"]], retain_graph=True)
        dv = torch.autograd.grad(s["vol"].sum(), L["vol"])[0]
        sec = {
            "gamma": s["spot"] ** 2 + ds[0],
            "vanna": s["spot"] * s["vol"] + ds[1],
            "volga": s["vol"] ** 2 + dv,
        }
        w.update({k: v for k, v in sec.items() if k in need})
    return {k: v.detach() for k, v in w.items()}


def lr_assemble(sim, f, w, names, block, with_price=True) -> dict[str, torch.Tensor]:
    """Per-path LR contributions for payoff values f (c, *B_tot) with weights w."""
    d = sim.dist0
    D, r, T = d.discount, d.rate, d.maturity
    b = LeaveOneOut()(f, block=block) if sim.use_baseline and sim.cv is None else 0.0
    g = f - b
    out = {"price": D * f} if with_price else {}
    Dg = D * g
    for k in names:
        if k == "rho":
            out[k] = Dg * w[k] - (T * D) * f
        elif k == "theta":
            out[k] = (r * D) * f - Dg * w[k]
        else:
            out[k] = Dg * w[k]
    return out


def chunk_lr(sim, c):
    """One chunk by LR: ({quantity: (c, *B_tot)}, block, controls or None)."""
    draw = sim.draw(c)
    d = sim.dist0
    S = lift(d.path(draw.z) if draw.x is None else d.prices(draw.x), sim.extra)
    f = sim.payoff_values(S, c)
    w = lr_weights(sim, draw, set(sim.names))
    out = lr_assemble(sim, f, w, sim.names, draw.block)
    ctrl = controls(sim, S, w) if sim.cv is not None else None
    return out, draw.block, ctrl


def chunk_lr_given(sim, draw, f):
    """LR contributions for paths already drawn and priced (mixed with nothing pathwise)."""
    w = lr_weights(sim, draw, set(sim.names))
    return lr_assemble(sim, f, w, sim.names, draw.block), draw.block, None
