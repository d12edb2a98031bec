"""Mixed Greeks: pathwise on the payoff's smooth part, likelihood ratio on the rest.

With f = f_smooth + f_rough (``Payoff.smooth``), first derivatives are pathwise on f_smooth plus
LR on f_rough; second derivatives go "pathwise then LR": with h_a(x; θ) the pathwise
a-derivative written as a function of the path x, ∂_b E[h_a] = E[h_a ∂_b log p + ∂_b h_a |_x]
(Glasserman 2004, §7.3.3). For a call this is the classical mixed gamma
e^{-rT} E[1{S_T>K} (S_T/S₀)(Z/(S₀σ√T)) - 1{S_T>K} S_T/S₀²].
"""

from __future__ import annotations

import torch

from .lr import chunk_lr_given, lr_assemble, lr_weights
from .names import FIRST, SECOND, parameters_of
from .simulation import lift

__all__ = ["chunk_mixed"]


def chunk_mixed(sim, c):
    """One chunk by the mixed estimator: ({quantity: (c, *B_tot)}, block, None)."""
    allowed = sim.model.paths.pathwise_params
    draw = sim.draw(c)
    x = draw.x if draw.x is not None else sim.dist0.path(draw.z)
    S0 = lift(sim.dist0.prices(x), sim.extra)
    f = sim.payoff_values(S0, c)
    pw = [k for k in sim.names if parameters_of(k)[0] in allowed]
    if sim.payoff.smooth(S0) is None or not pw:  # nothing to differentiate pathwise: LR
        return chunk_lr_given(sim, draw, f)
    smooth0 = sim.payoff_values(S0, c, fn=sim.payoff.smooth)
    rough = f - smooth0
    w = lr_weights(sim, draw, set(sim.names) | {"delta", "vega"})
    out = lr_assemble(sim, rough, w, pw, draw.block, with_price=False)
    lr_only = [k for k in sim.names if k not in pw]  # e.g. theta under Merton: all by LR
    out.update(lr_assemble(sim, f, w, lr_only, draw.block, with_price=False))
    # pathwise-then-LR on the smooth part
    A, Bp = sim.leaves(c), sim.leaves(c)
    eps = sim.model.dist(**A).noise(lift(x, sim.extra))
    dB = sim.model.dist(**Bp)
    sm = sim.payoff_values(dB.prices(dB.path(eps)), c, fn=sim.payoff.smooth, keep_graph=True)
    F = dB.discount * sm
    firsts = sorted({parameters_of(k)[0] for k in pw})
    hs = torch.autograd.grad(F.sum(), [Bp[p] for p in firsts], create_graph=True)
    h = dict(zip(firsts, hs, strict=True))
    score = {"spot": w["delta"], "vol": w["vega"]}
    for k in pw:
        if k in FIRST:
            g = h[FIRST[k]].detach()
            out[k] = out[k] + (-g if k == "theta" else g)
        else:
            a, b = SECOND[k]
            d1, d2 = torch.autograd.grad(
                h[a].sum(), [Bp[b], A[b]], retain_graph=True, allow_unused=True
            )
            extra = sum(t for t in (d1, d2) if t is not None)
            out[k] = out[k] + (h[a] * score[b] + extra).detach()
    out["price"] = sim.dist0.discount * f
    return out, draw.block, None
