"""The one-date GBM likelihood-ratio kernel: sufficient statistics instead of per-path Greeks.

With one monitoring date, log S_T = log S₀ + (r - q - σ²/2)T + σ√T z, and every LR weight is a
polynomial in z of degree P ≤ 4 (``GBMPaths.lr_weights`` with m = 1; tested equal). With the
leave-one-out baseline b_i = (Σf - f_i)/(c - 1) = β - f_i/(c - 1), β = Σf/(c - 1), every
per-path contribution is affine in V = (f, f z, .., f z^P, z, .., z^P):

    y_G = Σ_p s_G D κ c_{G,p} f z^p + e_G f - β s_G D Σ_p c_{G,p} z^p,   κ = c/(c - 1),

(s_G = -1 for theta, +1 otherwise; e_rho = -T D, e_theta = r D, e_price = D), so a chunk's mean
and sum of squared deviations of every y_G follow exactly from V's mean and second-moment matrix:
one (2P+1)×(2P+1) matrix product per chunk. The coefficients c_{G,p} depend on the parameters
only, and are computed once per estimate in NumPy float64 (no tensor operations, no device
round trip).
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
import torch

from .simulation import lift

__all__ = ["applies", "BasisKernel"]


def applies(sim) -> bool:
    """The kernel covers i.i.d. LR on a one-date GBM without a control variate."""
    return sim.iid_normals and sim.method == "lr" and sim.cv is None and sim.model.n_dates == 1


def _host(v) -> np.ndarray | float:
    if isinstance(v, Real):
        return float(v)
    return torch.as_tensor(v).detach().to("cpu", torch.float64).numpy()


def _poly_mul(a, b):
    out = [0.0] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            out[i + j] = out[i + j] + x * y
    return out


def _poly_add(a, b):
    n = max(len(a), len(b))
    a, b = a + [0.0] * (n - len(a)), b + [0.0] * (n - len(b))
    return [x + y for x, y in zip(a, b, strict=True)]


def poly_weights(S0, sig, T, r, q, names) -> dict[str, list]:
    """LR weights of the one-date GBM as polynomials in z: {greek: [c_0, c_1, ...]}."""
    sq = T**0.5
    s = sig * sq
    mu = r - q - 0.5 * sig**2
    sS = [0.0, 1 / (S0 * s)]
    sv = [-1 / sig, -sq, 1 / sig]
    w = {
        "delta": sS,
        "gamma": [-1 / (S0 * s) ** 2, -1 / (S0**2 * s), 1 / (S0 * s) ** 2],
        "vega": sv,
        "rho": [0.0, sq / sig],
        "theta": [-1 / (2 * T), mu / s, 1 / (2 * T)],
    }
    if "vanna" in names:
        w["vanna"] = _poly_add(_poly_mul(sS, sv), [1 / (sig * S0), -2 / (sig**2 * sq * S0)])
    if "volga" in names:
        w["volga"] = _poly_add(_poly_mul(sv, sv), [1 / sig**2 - T, 3 * sq / sig, -3 / sig**2])
    return {k: w[k] for k in names}


class BasisKernel:
    """The kernel prepared for one estimate: ``chunk(c)`` -> (c, mean, M2) over (*B_tot, G) with
    G = price and the Greeks in order."""

    def __init__(self, sim, sizes):
        self.sim = sim
        v = [_host(sim.model.values[k]) for k in ("spot", "vol", "rate", "div", "maturity")]
        S0, sig, r, q, T = v
        scalar = all(isinstance(x, float) for x in v)  # Python arithmetic: no array calls
        exp, log = (math.exp, math.log) if scalar else (np.exp, np.log)
        B = tuple(sim.B_dist)
        w = poly_weights(S0, sig, T, r, q, sim.names)
        self.P = P = max((len(c) for c in w.values()), default=1) - 1
        D = exp(-r * T)
        # W[G][p] = s_G D c_{G,p} (zero for the price row);  E[G] = e_G (on the f column)
        W, E = [[0.0] * (P + 1)], [D]
        for name in sim.names:
            sign = -1.0 if name == "theta" else 1.0
            W.append([sign * D * cp for cp in w[name]] + [0.0] * (P + 1 - len(w[name])))
            E.append(-T * D if name == "rho" else r * D if name == "theta" else 0.0)
        loc = log(S0) + (r - q - 0.5 * sig * sig) * T
        scale = sig * T**0.5
        # every coefficient the chunks need, moved to the device in one transfer: W, loc,
        # scale, and per chunk size c the f-column coefficients κ W + E (κ = c/(c - 1))
        kappas = [c / (c - 1.0) if sim.use_baseline else 1.0 for c in sorted(set(sizes))]
        parts = [W, [[loc]], [[scale]]]
        for kappa in kappas:
            parts.append(
                [
                    [x * kappa + (e if p == 0 else 0.0) for p, x in enumerate(row)]
                    for row, e in zip(W, E, strict=True)
                ]
            )
        if scalar:
            flat = torch.tensor([x for part in parts for row in part for x in row], dtype=sim.dtype)
        else:  # (*B, rows, cols) per part, flattened
            arrays = [
                np.stack(
                    [
                        np.stack(np.broadcast_arrays(*row, np.zeros(B)), -1)[..., :-1]
                        for row in part
                    ],
                    -2,
                )
                for part in parts
            ]
            flat = torch.tensor(np.concatenate([a.ravel() for a in arrays]), dtype=sim.dtype)
        flat = flat.to(sim.device) if sim.device is not None else flat
        G = len(W)
        views = iter(flat.split([math.prod(B) * len(p) * len(p[0]) for p in parts]))
        self.W = next(views).view(*B, G, P + 1)
        self.loc = next(views).view(*B, 1)
        self.scale = next(views).view(*B, 1)
        self.Af = {c: next(views).view(*B, G, P + 1) for c in sorted(set(sizes))}

    def chunk(self, c):
        """One chunk reduced to (count, mean, M2) per quantity, without per-path Greeks."""
        sim, P = self.sim, self.P
        Bt = tuple(sim.B_tot)
        z = sim.draw(c).z  # (c, 1.., 1)
        S = torch.addcmul(self.loc, z, self.scale).exp_()
        f = sim.payoff_values(lift(S, sim.extra), c)  # (c, *B_tot)
        zz = z[..., 0]
        if Bt:
            zz = lift(zz.expand(c, *sim.B_dist), sim.extra).expand(c, *Bt)
        k = 2 * P + 1
        V = torch.empty((k, c, *Bt), dtype=f.dtype, device=f.device)
        V[0] = f
        if P:
            V[P + 1] = zz
        for p in range(1, P + 1):
            torch.mul(V[p - 1], zz, out=V[p])
            if p > 1:
                torch.mul(V[P + p - 1], zz, out=V[P + p])
        vmean = V.mean(1)  # (k, *Bt)
        if not Bt:
            M2 = torch.addmm(V @ V.T, vmean.unsqueeze(1), vmean.unsqueeze(0), alpha=-c)
            vm = vmean
        else:
            Vb = V.reshape(k, c, -1).permute(2, 0, 1)  # (options, k, c)
            vm = vmean.movedim(0, -1)  # (*Bt, k)
            M2 = (Vb @ Vb.transpose(1, 2)).reshape(*Bt, k, k) - c * (
                vm.unsqueeze(-1) * vm.unsqueeze(-2)
            )
        Af = self.Af[c]
        if sim.use_baseline:
            beta = (vmean[0] * (c / (c - 1.0))).unsqueeze(-1)  # Σf/(c-1), (*Bt, 1)
            negbW = self.W * (-beta.unsqueeze(-1))  # (*Bt, G, P+1)
            A = torch.cat([Af.expand(*negbW.shape), negbW[..., 1:]], -1)  # (*Bt, G, k)
            const = negbW[..., 0]
        else:
            A = Af.expand(*Bt, *Af.shape[-2:])
            vm, M2 = vm[..., : P + 1], M2[..., : P + 1, : P + 1]
            const = None
        mean = (A @ vm.unsqueeze(-1)).squeeze(-1)
        if const is not None:
            mean = mean + const
        m2 = ((A @ M2) * A).sum(-1).clamp_min(0)
        return c, mean, m2
