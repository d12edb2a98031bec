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


def _coefficients(sim, sizes):
    """(P, W, {c: Af_c}, loc, scale) in float64 NumPy arrays over the model batch: W[..., G, p] =
    s_G D c_{G,p} (zero for the price row), Af_c = κ W + E on the f columns, log S_T = loc +
    scale·z."""
    v = [_host(sim.model.values[k]) for k in ("spot", "vol", "rate", "div", "maturity")]
    S0, sig, r, q, T = v
    B = tuple(sim.B_dist)
    w = poly_weights(S0, sig, T, r, q, sim.names)
    P = max((len(c) for c in w.values()), default=1) - 1
    D = np.exp(-np.multiply(r, T))
    G = 1 + len(sim.names)
    W = np.zeros((*B, G, P + 1))
    E = np.zeros((*B, G))
    E[..., 0] = D
    for i, name in enumerate(sim.names, start=1):
        sign = -1.0 if name == "theta" else 1.0
        for p, cp in enumerate(w[name]):
            W[..., i, p] = sign * D * cp
        if name == "rho":
            E[..., i] = -np.multiply(T, D)
        elif name == "theta":
            E[..., i] = np.multiply(r, D)
    Af = {}
    for c in set(sizes):
        Af[c] = W * (c / (c - 1.0) if sim.use_baseline else 1.0)
        Af[c][..., 0] += E
    loc = np.broadcast_to(np.log(S0) + (r - q - 0.5 * np.square(sig)) * T, B)
    scale = np.broadcast_to(np.multiply(sig, np.sqrt(T)), B)
    return P, W, Af, loc, scale


class BasisKernel:
    """The kernel prepared for one estimate: ``chunk(c)`` -> (c, mean, M2) over (*B_tot, G) with
    G = price and the Greeks in order.

    The paths and the basis sums (Σ V, Σ V Vᵀ) are computed in the estimate's dtype on its
    device; the small per-chunk algebra after them runs in float64, in NumPy on the CPU (a few
    microseconds, where each torch call on tiny tensors costs several) and in torch on other
    devices (no host round trip). Coefficients are memoised on the model while its parameter
    values stay the same (``Model.memo``), so repeated calls prepare nothing."""

    def __init__(self, sim, sizes, host: bool | None = None):
        self.sim = sim
        self.host = (sim.device is None or sim.device.type == "cpu") if host is None else host
        key = ("basis", tuple(sim.names), sim.dtype, sim.device, sim.use_baseline, tuple(sizes))
        key += (self.host,)
        self.P, self.W, self.Af, self.loc, self.scale = sim.model.memo(
            key, lambda: self._prepare(sizes)
        )

    def _prepare(self, sizes):
        sim = self.sim
        P, W, Af, loc, scale = _coefficients(sim, sizes)
        opts = dict(dtype=sim.dtype, device=sim.device)
        loc = torch.tensor(loc, **opts).unsqueeze(-1)
        scale = torch.tensor(scale, **opts).unsqueeze(-1)
        if not self.host:
            W = torch.as_tensor(W, device=sim.device)
            Af = {c: torch.as_tensor(a, device=sim.device) for c, a in Af.items()}
        return P, W, Af, loc, scale

    def chunk(self, c):
        """One chunk reduced to (count, mean, M2) per quantity, without per-path Greeks."""
        sim, P = self.sim, self.P
        Bt = tuple(sim.B_tot)
        z = sim.draw(c).z  # (c, 1.., 1)
        S = lift(torch.addcmul(self.loc, z, self.scale).exp_(), sim.extra)
        f = sim.payoff(S)  # (c, *B_tot); finiteness is checked below through its mean
        if not (isinstance(f, torch.Tensor) and f.shape == (c, *Bt) and f.dtype == sim.dtype):
            f = sim.payoff_values(S, c)  # converted, or refused with the reason
        zz = z[..., 0]
        if Bt:
            zz = lift(zz.expand(c, *sim.B_dist), sim.extra).expand(c, *Bt)
        rows = [f]  # V = (f, f z, .., f z^P, z, .., z^P)
        for _ in range(P):
            rows.append(rows[-1] * zz)
        if P:
            rows.append(zz)
            for _ in range(P - 1):
                rows.append(rows[-1] * zz)
        V = torch.stack(rows)  # (k, c, *Bt)
        k = V.shape[0]
        vsum = V.sum(1)  # (k, *Bt)
        if Bt:
            Vb = V.reshape(k, c, -1).permute(2, 0, 1)  # (options, k, c)
            S2 = (Vb @ Vb.transpose(1, 2)).reshape(*Bt, k, k)
            vsum = vsum.movedim(0, -1)  # (*Bt, k)
        else:
            S2 = V @ V.T
        if self.host:
            mean, m2 = self._finish(np, c, vsum.double().numpy(), S2.double().numpy())
            if mean is None:
                sim.payoff_values(S, c)  # f is not finite: refused, naming the paths
            return c, torch.from_numpy(mean), torch.from_numpy(m2)
        mean, m2 = self._finish(torch, c, vsum.double(), S2.double())
        if mean is None:
            sim.payoff_values(S, c)
        return c, mean, m2

    def _finish(self, xp, c, vsum, S2):
        """Mean and M2 of every y_G from Σ V and Σ V Vᵀ (float64; ``xp`` is NumPy or torch)."""
        vm = vsum / c
        if not bool(xp.isfinite(vm[..., 0]).all()):  # f is not finite somewhere
            return None, None
        M2 = S2 - c * (vm[..., :, None] * vm[..., None, :])
        Af = self.Af[c]
        if self.sim.use_baseline:
            beta = vm[..., 0, None, None] * (c / (c - 1.0))  # Σf/(c-1), (*Bt, 1, 1)
            negbW = -beta * self.W  # (*Bt, G, P+1)
            A = xp.concatenate([xp.broadcast_to(Af, negbW.shape), negbW[..., 1:]], -1)
            mean = (A @ vm[..., None])[..., 0] + negbW[..., 0]
        else:  # only the f columns
            P1 = self.P + 1
            A, vm, M2 = Af, vm[..., :P1], M2[..., :P1, :P1]
            mean = (A @ vm[..., None])[..., 0]
        m2 = ((A @ M2) * A).sum(-1).clip(min=0)
        return mean, m2
