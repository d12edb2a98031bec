"""Monte Carlo prices and Greeks with standard errors: likelihood ratio, pathwise and mixed.

For a discounted payoff P(θ) = e^{-rT} E_θ[f(S)], S ~ p(·; θ) a path model
(``scoregrad.finance.models``), the three estimators of ∂P/∂θ are

* **likelihood ratio (LR, score function)**:
  ∂_a P = E[e^{-rT} (f - b) ∂_a log p] + (∂_a e^{-rT}) E[f],
  and second order ∂_a∂_b P = E[e^{-rT} (f - b)(∂_a log p ∂_b log p + ∂_a∂_b log p)] for a, b in
  {spot, vol} (gamma, vanna, volga). The scores are those of the core (``scoregrad.score``,
  through ``SampleModel.expand`` with ``create_graph``, i.e. the DiCE derivatives of
  ``scoregrad.expectation``), or for GBM the same weights in closed form (faster; tested equal).
  b is a leave-one-out baseline (``scoregrad.baselines.LeaveOneOut``): any b independent of the
  sample keeps first *and* second orders unbiased, since E[∂ log p] = E[∂_a log p ∂_b log p +
  ∂_a∂_b log p] = 0 (Broadie & Glasserman 1996; Glasserman 2004, §7.3).
* **pathwise**: differentiate e^{-rT} f(S(θ, Z)) through the reparameterised path; needs a payoff
  that is Lipschitz in the path (``Payoff.pathwise_order``), first order only for kinked payoffs.
* **mixed**: pathwise on the payoff's smooth part, LR on the rest; second derivatives by
  "pathwise then LR": with h_a(x; θ) the pathwise a-derivative written as a function of the path x,
  ∂_b E[h_a] = E[h_a ∂_b log p + ∂_b h_a |_x] (Glasserman 2004, §7.3.3). For a call this is the
  classical mixed gamma e^{-rT} E[1{S_T>K} (S_T/S₀)(Z/(S₀σ√T)) - 1{S_T>K} S_T/S₀²].

Variance reduction, all usable with LR: control variates with known mean (the terminal price,
E[S_T] = S₀e^{(r-q)T}; the geometric Asian for the arithmetic Asian; or your own
``PathControlVariate``), applied to every Greek by differentiating the control the same way
(H_G = h·w_G - ∂_G E[h]), together with the score itself (an optimal baseline), with
coefficients fitted leave-one-out (so the estimator stays unbiased); antithetic paths and
randomised QMC (Sobol with a Brownian bridge) through the core samplers
(``scoregrad.sampling.Antithetic``/``QMC``). Standard errors always come from independent units
(paths, antithetic pairs, or QMC replicates), streamed in chunks through the core's
``RunningMoments`` so memory stays constant in n.

>>> from scoregrad.finance import GBM, Call, estimate_greeks
>>> m = GBM(spot=100.0, vol=0.25, rate=0.1, div=0.03, maturity=0.2)
>>> res = estimate_greeks(m, Call(100.0), n=100_000, seed=0)
>>> abs(float(res.greeks["delta"]) - 0.568) < 4 * float(res.stderr["delta"])
True
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..baselines import LeaveOneOut
from ..control_variates import ControlVariate
from ..core import RunningMoments, SampleModel, as_values, loo_regress, seeded
from ..errors import ControlVariateError, EstimatorNotApplicable, ParameterError, SampleSizeError
from ..sampling import IID, QMC, Antithetic
from . import closed_form as cf
from .models import GBM, GBMPaths, Merton, Model, broadcast_shapes
from .payoffs import (
    ArithmeticAsian,
    AssetDigital,
    Call,
    CashDigital,
    GeometricAsian,
    Payoff,
    Put,
    _Digital,
    as_payoff,
)

__all__ = [
    "pathwise_problem",
    "GREEK_NAMES",
    "GreeksResult",
    "PathControlVariate",
    "estimate_greeks",
    "exact_greeks",
]

GREEK_NAMES = ("delta", "gamma", "vega", "rho", "theta", "vanna", "volga")
DEFAULT_GREEKS = ("delta", "gamma", "vega", "rho", "theta")
_FIRST = {"delta": "spot", "vega": "vol", "rho": "rate", "theta": "maturity"}
_SECOND = {"gamma": ("spot", "spot"), "vanna": ("spot", "vol"), "volga": ("vol", "vol")}
_BASE = ("spot", "vol", "rate", "div", "maturity")
METHODS = ("lr", "pathwise", "mixed")


# -- result ----------------------------------------------------------------------------------------
@dataclass
class GreeksResult:
    """Price and Greeks with standard errors; tensors shaped like the option batch.

    ``greeks``/``stderr``: {name: tensor}; ``z_scores(exact)`` gives (estimate - exact)/SE, which
    is ~N(0, 1) for an unbiased estimator. theta is -∂P/∂T (per year).
    """

    price: torch.Tensor
    price_se: torch.Tensor
    greeks: dict[str, torch.Tensor]
    stderr: dict[str, torch.Tensor]
    method: str
    n: int
    n_units: int
    seconds: float
    sampler: str = "iid"
    control_variate: str | None = None
    info: dict = field(default_factory=dict)

    def z_scores(self, exact: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {}
        for k, v in exact.items():
            est = self.price if k == "price" else self.greeks.get(k)
            se = self.price_se if k == "price" else self.stderr.get(k)
            if est is not None:
                out[k] = (est - torch.as_tensor(v).to(est)) / se
        return out

    def __repr__(self):
        def f(t):
            t = t.detach()
            return (
                f"{t.item():.6g}"
                if t.numel() == 1
                else str([round(x, 6) for x in t.flatten()[:6].tolist()])
            )

        g = ", ".join(f"{k}={f(v)}±{f(self.stderr[k])}" for k, v in self.greeks.items())
        return (
            f"GreeksResult(method={self.method}, price={f(self.price)}±{f(self.price_se)}, "
            f"{g}, n={self.n})"
        )


# -- control variates ------------------------------------------------------------------------------
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


def geometric_asian_cv(payoff: ArithmeticAsian, model: Model) -> PathControlVariate:
    """h = the geometric Asian payoff, same strike and dates; E[h] from Kemna-Vorst (GBM)."""
    if not isinstance(model, GBM):
        raise EstimatorNotApplicable(
            "the geometric-Asian control variate needs the GBM closed form; with "
            f"{type(model).__name__} use control_variate='terminal'."
        )
    geo = GeometricAsian(payoff.strike, payoff.option)
    fr = model.fractions

    def mean(spot, vol, rate, div, maturity, **_):
        p = cf.geometric_asian(
            spot, geo.strike.to(spot), vol, rate, div, maturity, fractions=fr, option=geo.option
        )
        return p * torch.exp(rate * maturity)

    return PathControlVariate(geo, mean, name="geometric-asian")


def _resolve_cv(cv, payoff, model):
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


# -- exact values ----------------------------------------------------------------------------------
def exact_greeks(
    model: Model, payoff: Payoff, names: Sequence[str] = GREEK_NAMES, dtype=torch.float64
) -> dict[str, torch.Tensor] | None:
    """Closed-form price and Greeks where one exists (GBM: vanilla, digitals, geometric Asian;
    Merton: vanilla), by autograd of ``closed_form``; None otherwise."""
    p = {k: torch.as_tensor(v, dtype=dtype) for k, v in model.values.items()}
    fn = None
    if isinstance(model, GBM) and isinstance(payoff, (Call, Put)):
        fn = lambda **q: cf.black_scholes(strike=payoff.strike, option=payoff.name, **q)  # noqa
    elif isinstance(model, GBM) and isinstance(payoff, CashDigital):
        fn = lambda **q: cf.cash_digital(
            strike=payoff.strike,
            option=payoff.option,  # noqa
            cash=payoff.cash,
            **q,
        )
    elif isinstance(model, GBM) and isinstance(payoff, AssetDigital):
        fn = lambda **q: cf.asset_digital(strike=payoff.strike, option=payoff.option, **q)  # noqa
    elif isinstance(model, GBM) and isinstance(payoff, GeometricAsian):
        fn = lambda **q: cf.geometric_asian(
            strike=payoff.strike,
            option=payoff.option,  # noqa
            fractions=model.fractions,
            **q,
        )
    elif isinstance(model, Merton) and isinstance(payoff, (Call, Put)):
        fn = lambda **q: cf.merton_jump(strike=payoff.strike, option=payoff.name, **q)  # noqa
    if fn is None:
        return None
    return cf.greeks(fn, p, [n for n in names if n in GREEK_NAMES])


# -- helpers ---------------------------------------------------------------------------------------
def _lift(t: torch.Tensor, extra: int) -> torch.Tensor:
    """Insert ``extra`` singleton axes after the sample axis (to broadcast against a batch)."""
    return t.reshape(t.shape[0], *([1] * extra), *t.shape[1:]) if extra else t


def _numpy_normals(out: torch.Tensor, gen: np.random.Generator) -> torch.Tensor:
    a = out.numpy()
    gen.standard_normal(out=a, dtype=a.dtype)
    return out


class _Chunk:
    """One chunk's draws: the path x (or standard normals z for the GBM fast path) and block."""

    def __init__(self, x, z, block):
        self.x, self.z, self.block = x, z, block


# -- the estimator ---------------------------------------------------------------------------------
class _Engine:
    """One estimate's state: the model at its parameters, the payoff, and per-chunk steps
    (``chunk_lr``, ``chunk_basis``, ``chunk_pathwise``, ``chunk_mixed``) that return per-path
    contributions {quantity: (c, *batch)} (or, for the one-date GBM kernel, their moments)."""

    def __init__(
        self, model, payoff, method, names, sampler, cv, baseline, dtype, device, engine, rng
    ):
        self.model, self.payoff, self.method = model, payoff, method
        self.names = list(names)
        self.sampler, self.cv, self.use_baseline = sampler, cv, baseline
        self.dtype, self.device = dtype, device
        self.params = {k: v.detach() for k, v in model.params(dtype, device).items()}
        self.B_dist = model.batch_shape()
        self.B_tot = broadcast_shapes(self.B_dist, payoff.batch_shape)
        self.extra = len(self.B_tot) - len(self.B_dist)
        pb = {k: v.expand(self.B_dist) for k, v in self.params.items()}
        self.pb = pb
        self.dist0 = model.dist(**pb)
        payoff.validate(pb["spot"])
        if isinstance(payoff, _Digital) and payoff.width is None and method == "mixed":
            payoff = copy.copy(payoff)  # ramp half-width ≈ one standard deviation of S_T
            payoff.width = _digital_width(payoff, pb)
            self.payoff = payoff
        self.fast = isinstance(self.dist0, GBMPaths) and engine in ("auto", "analytic")
        if engine == "analytic" and not isinstance(self.dist0, GBMPaths):
            raise EstimatorNotApplicable(
                "engine='analytic' has closed-form LR weights for GBM only; use engine='autograd'."
            )
        self.rng = rng
        self.np_gen = None
        self._cm = None
        self._coef = {}
        self._buf = {}
        self._loc = None

    # sampling
    def draw(self, c: int) -> _Chunk:
        d = self.dist0
        if isinstance(self.sampler, IID) and self.fast:
            shape = (c, *([1] * len(self.B_dist)), d.event_shape[0])
            buf = self._buf.get(shape)  # reused across chunks: no fresh pages per chunk
            if buf is None:
                buf = self._buf[shape] = torch.empty(shape, dtype=self.dtype, device=self.device)
            z = _numpy_normals(buf, self.np_gen) if self.np_gen is not None else buf.normal_()
            return _Chunk(None, z, 1)
        x, block = self.sampler.draw(SampleModel.of(d, c))
        z = d.noise(x) if self.fast else None
        return _Chunk(x, z, block)

    def payoff_values(self, S, c, fn=None, keep_graph=False):
        out = (fn or self.payoff)(S)
        if (  # fast path: a float tensor of the right shape whose sum is finite needs no more
            isinstance(out, torch.Tensor)
            and out.shape == (c, *self.B_tot)
            and out.dtype == self.dtype
            and bool(torch.isfinite(out.sum()))
        ):
            return out if keep_graph else out.detach()
        return as_values(
            out,
            c,
            dtype=self.dtype,
            device=self.device,
            keep_graph=keep_graph,
            item_shape=tuple(self.B_tot),
        )

    # LR weights: {greek: (c, *B_dist)} raw scores (theta: ∂_T log p, not negated)
    def lr_weights(self, ch: _Chunk, need: set) -> dict:
        """{greek: (c, 1.., *B_dist)} raw LR weights, lifted to broadcast against the batch."""
        c = ch.z.shape[0] if ch.x is None else ch.x.shape[0]
        w = self._lr_weights(ch, need)
        return {k: _lift(v.expand(c, *self.B_dist), self.extra) for k, v in w.items()}

    def _lr_weights(self, ch, need):
        if self.fast:
            return self.dist0.lr_weights(ch.z, need)
        second = bool(need & set(_SECOND))
        pmodel = SampleModel.expand(self.model.dist, self.pb, ch.x.shape[0])
        s = pmodel.score(ch.x, create_graph=second)
        L = pmodel.leaves
        w = {g: s[p] for g, p in _FIRST.items() if g in need}
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

    def lr_assemble(self, f, w, names, block, with_price=True):
        """Per-sample LR contributions for payoff values f (c, *B_tot) with weights w."""
        d = self.dist0
        D, r, T = d.discount, d.rate, d.maturity
        b = LeaveOneOut()(f, block=block) if self.use_baseline and self.cv is None else 0.0
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

    # the three methods
    def chunk_lr(self, c):
        ch = self.draw(c)
        S = self.dist0.path(ch.z) if ch.x is None else self.dist0.prices(ch.x)
        S = _lift(S, self.extra)
        f = self.payoff_values(S, c)
        w = self.lr_weights(ch, set(self.names))
        out = self.lr_assemble(f, w, self.names, ch.block)
        ctrl = self.controls(S, w) if self.cv is not None else None
        return out, ch.block, ctrl

    # -- the GBM European kernel: sufficient statistics instead of per-sample Greeks ----------
    def basis_ok(self) -> bool:
        return (
            self.fast
            and self.method == "lr"
            and self.cv is None
            and isinstance(self.sampler, IID)
            and self.dist0.event_shape[0] == 1
        )

    def _poly_weights(self):
        """LR weights of the one-date GBM as polynomials in z: {greek: [c_0, c_1, ...]} (B_dist).

        The same closed forms as ``GBMPaths.lr_weights`` with m = 1 (tested equal)."""
        d = self.dist0
        S0, sig, T, r, q = d.spot, d.vol, d.maturity, d.rate, d.div
        sq = T.sqrt()
        s = sig * sq
        mu = r - q - 0.5 * sig**2
        zero = torch.zeros_like(S0)

        def mul(a, b):
            out = [zero] * (len(a) + len(b) - 1)
            for i, x in enumerate(a):
                for j, y in enumerate(b):
                    out[i + j] = out[i + j] + x * y
            return out

        def add(a, b):
            n = max(len(a), len(b))
            a, b = a + [zero] * (n - len(a)), b + [zero] * (n - len(b))
            return [x + y for x, y in zip(a, b, strict=False)]

        sS = [zero, 1 / (S0 * s)]
        sv = [-1 / sig, -sq, 1 / sig]
        w = {
            "delta": sS,
            "gamma": [-1 / (S0 * s) ** 2, -1 / (S0**2 * s), 1 / (S0 * s) ** 2],
            "vega": sv,
            "rho": [zero, sq / sig],
            "theta": [-1 / (2 * T), mu / s, 1 / (2 * T)],
        }
        if "vanna" in self.names:
            w["vanna"] = add(mul(sS, sv), [1 / (sig * S0), -2 / (sig**2 * sq * S0)])
        if "volga" in self.names:
            w["volga"] = add(mul(sv, sv), [1 / sig**2 - T, 3 * sq / sig, -3 / sig**2])
        return {k: w[k] for k in self.names}

    def _basis_coefficients(self, c):
        """(A_f, A_z, const): the Greek contributions are
        y = A_f·(f z^p)_p + β (A_z·(z^p)_p + const), with β = Σf/(c-1) the chunk's leave-one-out
        baseline term (0 without a baseline)."""
        d = self.dist0
        w = self._poly_weights()
        P = max(len(v) for v in w.values()) - 1
        D, r, T = d.discount, d.rate, d.maturity
        kappa = c / (c - 1.0) if self.use_baseline else 1.0
        zero = torch.zeros_like(D)
        Af, Az, const = [], [], []
        for name in ["price", *self.names]:
            af, az, k0 = [zero] * (P + 1), [zero] * P, zero
            if name == "price":
                af[0] = D
            else:
                sign = -1.0 if name == "theta" else 1.0
                for p, cp in enumerate(w[name]):
                    af[p] = af[p] + sign * D * kappa * cp
                    if p == 0:
                        k0 = -sign * D * cp
                    else:
                        az[p - 1] = -sign * D * cp
                if name == "rho":
                    af[0] = af[0] - T * D
                if name == "theta":
                    af[0] = af[0] + r * D
            Af.append(torch.stack(torch.broadcast_tensors(*af), -1))
            Az.append(torch.stack(torch.broadcast_tensors(*az), -1))
            const.append(k0)
        st = lambda xs: torch.stack(torch.broadcast_tensors(*xs), -2)  # noqa: E731
        return P, st(Af), st(Az), torch.stack(torch.broadcast_tensors(*const), -1)

    def chunk_basis(self, c):
        """One chunk of the one-date GBM LR estimator, reduced to (count, mean, M2) per Greek.

        Every per-path contribution is y = a·V + const with V = (f, f z, .., f z^P, z, .., z^P) and
        chunk-constant a (the leave-one-out baseline b_i = (Σf - f_i)/(c - 1) is affine in f_i), so
        the chunk's mean and sum of squared deviations of y follow exactly from V's mean and
        second-moment matrix (one small matrix product): no per-path Greek is materialised."""
        d = self.dist0
        if c not in self._coef:
            self._coef[c] = self._basis_coefficients(c)
        P, Af, Az, const = self._coef[c]
        z = self.draw(c).z  # (c, 1.., 1)
        if self._loc is None:  # log S_T = loc + scale z
            self._loc = torch.log(d.spot) + (d.rate - d.div - 0.5 * d.vol**2) * d.maturity
            self._scale = d.vol * d.maturity.sqrt()
        S = _lift(
            torch.addcmul(self._loc.unsqueeze(-1), z, self._scale.unsqueeze(-1)).exp_(), self.extra
        )
        f = self.payoff_values(S, c)  # (c, *B_tot)
        Bt = tuple(self.B_tot)
        zz = _lift(z[..., 0].expand(c, *self.B_dist), self.extra).expand(c, *Bt)
        k = 2 * P + 1
        V = torch.empty((k, c, *Bt), dtype=f.dtype, device=f.device)
        V[0] = f
        V[P + 1] = zz
        for p in range(1, P + 1):
            torch.mul(V[p - 1], zz, out=V[p])
            if p > 1:
                torch.mul(V[P + p - 1], zz, out=V[P + p])
        vmean = V.mean(1)  # (k, *Bt)
        if not Bt:
            M2 = V @ V.T - c * torch.outer(vmean, vmean)
        else:
            Vb = V.reshape(k, c, -1).permute(2, 0, 1)  # (options, k, c)
            M2 = (Vb @ Vb.transpose(1, 2)).reshape(*Bt, k, k) - c * (
                vmean.movedim(0, -1).unsqueeze(-1) * vmean.movedim(0, -1).unsqueeze(-2)
            )
        vm = vmean.movedim(0, -1)  # (*Bt, k)
        beta = (
            f.sum(0) / (c - 1.0)
            if self.use_baseline
            else torch.zeros(Bt, dtype=f.dtype, device=f.device)
        )
        A = torch.cat(
            [Af.expand(*Bt, *Af.shape[-2:]), beta.unsqueeze(-1).unsqueeze(-1) * Az], -1
        )  # (*Bt, G, k)
        mean = (A * vm.unsqueeze(-2)).sum(-1) + beta.unsqueeze(-1) * const
        m2 = ((A @ M2) * A).sum(-1).clamp_min(0)
        return c, mean, m2

    def _leaves(self, c):
        return {
            k: v.detach().expand(c, *self.B_tot).clone().requires_grad_()
            for k, v in self.params.items()
        }

    def chunk_pathwise(self, c):
        ch = self.draw(c)
        z = ch.z if ch.z is not None else self.dist0.noise(ch.x)
        L = self._leaves(c)
        dL = self.model.dist(**L)
        x = dL.path(_lift(z, self.extra))
        f = self.payoff_values(dL.prices(x), c, keep_graph=True)
        F = dL.discount * f
        second = any(k in _SECOND for k in self.names)
        firsts = sorted({_SECOND.get(k, (_FIRST.get(k),))[0] for k in self.names})
        gs = (
            torch.autograd.grad(F.sum(), [L[p] for p in firsts], create_graph=second)
            if firsts
            else ()
        )
        grads = dict(zip(firsts, gs, strict=True))
        out = {"price": F.detach()}
        for k in self.names:
            if k in _FIRST:
                g = grads[_FIRST[k]]
                out[k] = (-g if k == "theta" else g).detach()
            else:
                a, b = _SECOND[k]
                out[k] = torch.autograd.grad(grads[a].sum(), L[b], retain_graph=True)[0].detach()
        return out, ch.block, None

    def chunk_mixed(self, c):
        allowed = self.dist0.pathwise_params
        ch = self.draw(c)
        x = ch.x if ch.x is not None else self.dist0.path(ch.z)
        S0 = _lift(self.dist0.prices(x), self.extra)
        f = self.payoff_values(S0, c)
        smooth0 = self.payoff.smooth(S0)
        pw = [k for k in self.names if _SECOND.get(k, (_FIRST.get(k),))[0] in allowed]
        if smooth0 is None or not pw:  # nothing to differentiate pathwise: mixed is LR
            return self.chunk_lr_given(ch, S0, f)
        smooth0 = self.payoff_values(S0, c, fn=self.payoff.smooth)
        rough = f - smooth0
        w = self.lr_weights(ch, set(self.names) | {"delta", "vega"})
        out = self.lr_assemble(rough, w, pw, ch.block, with_price=False)
        lr_only = [k for k in self.names if k not in pw]  # e.g. theta under Merton: all by LR
        out.update(self.lr_assemble(f, w, lr_only, ch.block, with_price=False))
        # pathwise-then-LR on the smooth part
        A, Bp = self._leaves(c), self._leaves(c)
        eps = self.model.dist(**A).noise(_lift(x, self.extra))
        dB = self.model.dist(**Bp)
        sm = self.payoff_values(dB.prices(dB.path(eps)), c, fn=self.payoff.smooth, keep_graph=True)
        F = dB.discount * sm
        firsts = sorted({_SECOND.get(k, (_FIRST.get(k),))[0] for k in pw})
        hs = torch.autograd.grad(F.sum(), [Bp[p] for p in firsts], create_graph=True)
        h = dict(zip(firsts, hs, strict=True))
        score = {"spot": w["delta"], "vol": w["vega"]}
        for k in pw:
            if k in _FIRST:
                g = h[_FIRST[k]].detach()
                out[k] = out[k] + (-g if k == "theta" else g)
            else:
                a, b = _SECOND[k]
                d1, d2 = torch.autograd.grad(
                    h[a].sum(), [Bp[b], A[b]], retain_graph=True, allow_unused=True
                )
                extra = sum(t for t in (d1, d2) if t is not None)
                out[k] = out[k] + (h[a] * score[b] + extra).detach()
        out["price"] = self.dist0.discount * f
        return out, ch.block, None

    def chunk_lr_given(self, ch, S, f):
        w = self.lr_weights(ch, set(self.names))
        return self.lr_assemble(f, w, self.names, ch.block), ch.block, None

    # control variates: {name: (c, *B_tot, k)} mean-zero controls
    def _control_mean(self):
        """E_θ[h] and its derivatives per Greek (theta: raw ∂_T), elementwise over the batch."""
        p = {
            k: v.detach().expand(self.B_tot).clone().requires_grad_()
            for k, v in self.params.items()
        }
        m = self.cv.mean(**p).expand(self.B_tot)
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
        for k in self.names:
            if k in _FIRST:
                t = g1[_FIRST[k]]
            else:
                a, b = _SECOND[k]
                t = g1[a]
                t = (
                    torch.autograd.grad(t.sum(), p[b], retain_graph=True, allow_unused=True)[0]
                    if t is not None and t.requires_grad
                    else None
                )
            dm[k] = torch.zeros_like(m) if t is None else t.detach()
        return m.detach(), dm

    def controls(self, S, w):
        h = torch.as_tensor(self.cv.h(S))
        try:
            shape = broadcast_shapes(h.shape[1:], self.B_tot)
            ok = h.dim() >= 1 and h.shape[0] == S.shape[0] and shape == self.B_tot
        except RuntimeError:
            ok = False
        if not ok:
            raise ControlVariateError(
                f"control variate h returned shape {tuple(h.shape)}; it must return one value per "
                f"path and option, shape ({S.shape[0]}, *{tuple(self.B_tot)})."
            )
        if self._cm is None:
            with torch.enable_grad():
                self._cm = self._control_mean()
        m, dm = self._cm
        ctrl = {"price": (h - m).expand(S.shape[0], *shape).unsqueeze(-1)}
        for k in self.names:
            hk = (h * w[k] - dm[k]).expand(S.shape[0], *shape)
            sk = w[k].expand(S.shape[0], *shape)
            ctrl[k] = torch.stack([hk, sk], -1)
        return ctrl


def pathwise_problem(model: Model, payoff, greek: str) -> str | None:
    """Why the pathwise method cannot give ``greek`` for this model and payoff (None if it can)."""
    payoff = as_payoff(payoff)
    order = payoff.pathwise_order
    p = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in model.values.items()}
    allowed = type(model.dist(**p)).pathwise_params
    ps = _SECOND.get(greek, (_FIRST.get(greek),))
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


def _digital_width(payoff, pb) -> torch.Tensor:
    """K σ √T broadcast over the option batch (strikes on the right, model batch on the left)."""
    sd = (pb["vol"] * pb["maturity"].sqrt()).detach().cpu()
    return payoff.strike.to(sd) * sd


def _sampler_of(sampler, replicates):
    if isinstance(sampler, (IID, Antithetic, QMC)):
        return sampler
    if sampler in (None, "iid"):
        return IID()
    if sampler == "antithetic":
        return Antithetic()
    if sampler == "qmc":
        return QMC(replicates=replicates)
    raise ParameterError(f"sampler must be 'iid', 'antithetic' or 'qmc', got {sampler!r}.")


def _granularity(sampler):
    if isinstance(sampler, QMC):
        return sampler.replicates
    return 2 if isinstance(sampler, Antithetic) else 1


def estimate_greeks(
    model: Model,
    payoff,
    n: int,
    *,
    method: str = "lr",
    greeks: Sequence[str] = DEFAULT_GREEKS,
    sampler="iid",
    replicates: int = 16,
    control_variate=None,
    baseline: bool = True,
    chunk_size: int | None = None,
    seed: int | None = None,
    dtype: torch.dtype = torch.float64,
    device=None,
    engine: str = "auto",
    rng: str = "auto",
) -> GreeksResult:
    """Monte Carlo price and Greeks of ``payoff`` under ``model``, each with a standard error.

    Args:
        model: ``GBM``, ``Heston`` or ``Merton`` (parameters may be tensors: a batch of options).
        payoff: a ``Payoff`` (strike tensors give a batch priced on the same paths) or a callable
            of the price path (LR only unless wrapped in ``Custom`` with a ``pathwise_order``).
        n: number of paths.
        method: 'lr' (likelihood ratio), 'pathwise' or 'mixed'.
        greeks: any of delta, gamma, vega, rho, theta (= -∂P/∂T), vanna, volga.
        sampler: 'iid', 'antithetic', 'qmc' (randomised Sobol, ``replicates`` scrambles; use
            ``bridge=True`` in the model for path-dependent payoffs), or a core sampler object.
        control_variate: None, 'terminal' (S_T), 'geometric' (geometric Asian, for arithmetic
            Asians under GBM) or a ``PathControlVariate``; LR only.
        baseline: leave-one-out baseline for LR (ignored with a control variate, which includes an
            optimal baseline).
        chunk_size: paths per chunk (default keeps each chunk's arrays ~2²² elements); memory
            is constant in n.
        seed: reproducible draws without changing the caller's RNG state.
        engine: 'auto' (closed-form GBM weights when possible), 'analytic' or 'autograd'.
        rng: 'auto' (NumPy's SFC64 normals for float64 on the CPU, twice as fast as torch's;
            torch otherwise), 'torch' or 'numpy'. Both are seeded by ``seed``.
    """
    start = time.perf_counter()
    if method not in METHODS:
        raise ParameterError(
            f"method must be one of {METHODS} (or 'all' in the CLI), got {method!r}."
        )
    bad = [g for g in greeks if g not in GREEK_NAMES]
    if bad:
        raise ParameterError(f"unknown Greek(s) {bad}; choose from {GREEK_NAMES}.")
    if not isinstance(n, int) or n < 2:
        raise SampleSizeError(f"n must be an integer number of paths >= 2, got {n!r}.")
    if not isinstance(model, Model):
        raise ParameterError(
            f"model must be a scoregrad.finance model (GBM, Heston, Merton), got {model!r}."
        )
    payoff = as_payoff(payoff)
    smp = _sampler_of(sampler, replicates)
    smp.check_n(n)
    cv = _resolve_cv(control_variate, payoff, model)
    if cv is not None and method != "lr":
        raise EstimatorNotApplicable(
            "control variates are applied to the likelihood-ratio weights; use method='lr', or "
            "antithetic/QMC sampling with the pathwise and mixed methods."
        )
    if method == "pathwise":
        for g in greeks:
            msg = pathwise_problem(model, payoff, g)
            if msg:
                raise EstimatorNotApplicable(msg)
    device = torch.device(device) if device is not None else None
    eng = _Engine(model, payoff, method, greeks, smp, cv, baseline, dtype, device, engine, rng)
    gran = _granularity(smp)
    if cv is not None and gran > 1 and isinstance(smp, QMC) and smp.replicates < 4:
        raise SampleSizeError("a control variate with QMC needs at least 4 replicates.")
    per = max(1, math.prod(eng.B_tot)) * max(1, eng.dist0.event_shape.numel())
    per *= 2 if eng.fast and method == "lr" else 12
    if chunk_size is None:
        chunk_size = max(gran, (2**22 // per) // gran * gran)
        if eng.fast and method == "lr" and isinstance(smp, IID):
            chunk_size = min(chunk_size, 2**17)
    chunk_size = max(gran, chunk_size // gran * gran)
    if isinstance(smp, QMC) and chunk_size < n and (chunk_size // gran) < 2:
        chunk_size = 2 * gran
    # equal chunks (whole units each): one buffer and one set of coefficients serve them all
    units, per_chunk = n // gran, max(1, chunk_size // gran)
    n_chunks = max(1, min(math.ceil(units / per_chunk), units // 3))  # >= 3 units per chunk
    base, extra = divmod(units, n_chunks)
    sizes = [(base + (i < extra)) * gran for i in range(n_chunks)]
    if cv is not None and any(s // gran < 3 for s in sizes):
        raise SampleSizeError(
            "leave-one-out control-variate coefficients need at least 3 independent units per "
            "chunk; raise n or chunk_size (units are paths, pairs or QMC replicates)."
        )
    names = ["price", *greeks]
    stats = RunningMoments()
    with seeded(seed, device):
        if eng.fast and isinstance(smp, IID):
            use_np = rng == "numpy" or (
                rng == "auto"
                and dtype == torch.float64
                and (device is None or device.type == "cpu")
            )
            if use_np:
                eng.np_gen = np.random.Generator(np.random.SFC64(int(torch.randint(0, 2**62, ()))))
        step = {"lr": eng.chunk_lr, "pathwise": eng.chunk_pathwise, "mixed": eng.chunk_mixed}[
            method
        ]
        ctx = torch.no_grad() if (eng.fast and method == "lr") else torch.enable_grad()
        with ctx:
            for c in sizes if eng.basis_ok() else ():
                stats.merge(*eng.chunk_basis(c))
            for c in sizes if not eng.basis_ok() else ():
                out, block, ctrl = step(c)
                U = c // block
                cols = []
                for k in names:
                    v = out[k].expand(c, *eng.B_tot)
                    if ctrl is not None:
                        v = loo_regress(v, ctrl[k], block)
                    cols.append(v.reshape(U, block, *eng.B_tot).mean(1) if block > 1 else v)
                stats.update(torch.stack(cols, -1))
    mean, se = stats.mean.to(dtype), stats.stderr().to(dtype)
    res = GreeksResult(
        price=mean[..., 0],
        price_se=se[..., 0],
        greeks={k: mean[..., i + 1] for i, k in enumerate(greeks)},
        stderr={k: se[..., i + 1] for i, k in enumerate(greeks)},
        method=method,
        n=n,
        n_units=stats.count,
        seconds=time.perf_counter() - start,
        sampler=repr(smp),
        control_variate=None if cv is None else cv.name,
        info={
            "engine": "analytic" if eng.fast else "autograd",
            "chunks": len(sizes),
            "chunk_size": chunk_size,
        },
    )
    return res
