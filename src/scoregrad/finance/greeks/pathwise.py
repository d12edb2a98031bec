"""Pathwise Greeks: differentiate e^{-rT} f(S(θ, Z)) through the reparameterised path.

Needs a payoff that is Lipschitz in the path (``Payoff.pathwise_order``): first order only for
kinked payoffs, since a kink's second derivative is zero almost surely (Glasserman 2004, §7.2),
and parameters along which the path is a differentiable function of its noise (the path
distribution's ``pathwise_params``; Merton's jump count depends on T).
"""

from __future__ import annotations

import torch

from ..payoffs import as_payoff
from .names import FIRST, SECOND, parameters_of
from .simulation import lift

__all__ = ["pathwise_problem", "chunk_pathwise"]


def pathwise_problem(model, payoff, greek: str) -> str | None:
    """Why the pathwise method cannot give ``greek`` for this model and payoff (None if it can)."""
    payoff = as_payoff(payoff)
    order = payoff.pathwise_order
    allowed = model.paths.pathwise_params
    ps = parameters_of(greek)
    if order == 0:
        return (
            f"pathwise {greek} of {payoff!r} is not available: the payoff is discontinuous in the "
            "path, so its pathwise derivative is zero almost surely and misses the jump. Use "
            "method='lr' (likelihood ratio) or method='mixed'."
        )
    if len(ps) == 2 and order < 2:
        return (
            f"pathwise {greek} of {payoff!r} is not available: the payoff has a kink, whose second "
            "derivative is zero almost surely, so pathwise second-order Greeks are biased. Use "
            "method='mixed' (pathwise then LR) or method='lr'."
        )
    if any(q not in allowed for q in ps):
        return (
            f"pathwise {greek} is not available for {type(model).__name__}: the path is not a "
            f"differentiable function of {ps[0]} (the jump count's law depends on it). Use "
            "method='lr' or method='mixed'."
        )
    return None


def chunk_pathwise(sim, c):
    """One chunk by pathwise differentiation: ({quantity: (c, *B_tot)}, block, None)."""
    draw = sim.draw(c)
    z = draw.z if draw.z is not None else sim.dist0.noise(draw.x)
    L = sim.leaves(c)
    dL = sim.model.dist(**L)
    x = dL.path(lift(z, sim.extra))
    f = sim.payoff_values(dL.prices(x), c, keep_graph=True)
    F = dL.discount * f
    second = any(k in SECOND for k in sim.names)
    firsts = sorted({parameters_of(k)[0] for k in sim.names})
    gs = torch.autograd.grad(F.sum(), [L[p] for p in firsts], create_graph=second) if firsts else ()
    grads = dict(zip(firsts, gs, strict=True))
    out = {"price": F.detach()}
    for k in sim.names:
        if k in FIRST:
            g = grads[FIRST[k]]
            out[k] = (-g if k == "theta" else g).detach()
        else:
            a, b = SECOND[k]
            out[k] = torch.autograd.grad(grads[a].sum(), L[b], retain_graph=True)[0].detach()
    return out, draw.block, None
