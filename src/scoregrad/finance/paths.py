"""Asset-price path distributions: ``torch.distributions`` over the simulated path.

Each model is a ``PathDistribution``: a distribution over the path observed on a time grid, with
``sample``/``rsample``/``log_prob``, so the core's score machinery (``scoregrad.score``,
``scoregrad.estimate_grad``, ``scoregrad.expectation`` with DiCE) applies unchanged, and the
likelihood-ratio (LR) Greeks are scores of these densities (Broadie & Glasserman 1996; Glasserman
2004, "Monte Carlo Methods in Financial Engineering", ch. 7).

Every model is parameterised by ``spot`` S₀, ``vol``, ``rate`` r, ``div`` (continuous dividend
yield q) and ``maturity`` T; the monitoring dates are t_k = T·φ_k for fixed fractions
0 < φ_1 < ... < φ_m = 1, so θ (= -∂P/∂T) moves every date with T. Parameters broadcast: a
tensor of spots (B,) gives a batch of B path distributions.

* ``GBMPaths``: geometric Brownian motion with dividend yield, simulated exactly at the dates:
  log S_{t_k} - log S_{t_{k-1}} ~ N((r - q - σ²/2)Δt_k, σ²Δt_k).
* ``HestonPaths``: Heston (1993) stochastic volatility, Euler scheme in (log S, v) with full
  truncation (Lord, Koekkoek & van Dijk 2010) and ``steps`` sub-steps per monitoring interval.
  Given the state, one step is a bivariate normal, so the transition density of the *scheme* is
  exact and can be scored: LR Greeks are unbiased for the discretised model. ``vol`` is √v₀.
* ``MertonPaths``: Merton (1976) jump diffusion. The path records, per interval, the price and the
  number of jumps N_k ~ Poisson(λΔt_k); given N_k the log increment is normal with mean
  (r - q - λk̄ - σ²/2)Δt + N_k μ_J and variance σ²Δt + N_k σ_J², k̄ = e^{μ_J + σ_J²/2} - 1.

Every model maps standard noise to a path (``path``), back (``noise``), and uniforms to paths by
inverse CDFs (``from_uniform``, registered with ``scoregrad.sampling.register_icdf`` so the core's
``Antithetic`` and ``QMC`` samplers work), optionally through a Brownian bridge so that the first
quasi-random coordinates fix the coarse shape of the path (Caflisch, Morokoff & Owen 1997).

The user-facing models with parameter values (``GBM``, ``Heston``, ``Merton``) are in
``scoregrad.finance.models``; each declares its distribution class here (``Model.paths``).

>>> import torch
>>> d = GBMPaths(100.0, 0.2, 0.05, 0.0, 1.0, fractions=torch.tensor([0.25, 0.5, 0.75, 1.0]))
>>> x = d.sample((3,))
>>> tuple(x.shape), tuple(d.log_prob(x).shape)
((3, 4), (3,))
"""

from __future__ import annotations

import math

import torch
import torch.distributions as D

from ..core import register_icdf
from .parameters import broadcast_shapes, check_parameters

__all__ = ["PathDistribution", "GBMPaths", "HestonPaths", "MertonPaths", "brownian_bridge"]

_LOG_2PI = math.log(2.0 * math.pi)


def _normal_logpdf(x, mean, var):
    return -0.5 * ((x - mean) ** 2 / var + torch.log(var) + _LOG_2PI)


# -- Brownian bridge -------------------------------------------------------------------------------
def _bridge_plan(times: torch.Tensor):
    """Order in which a Brownian bridge fills the grid: (index, left, right, w_l, w_r, sd)."""
    t = [0.0] + times.tolist()
    m = len(t) - 1
    plan = [(m, 0, None, 0.0, 0.0, math.sqrt(t[m]))]  # terminal value first
    queue = [(0, m)]
    while queue:
        nxt = []
        for lo, hi in queue:
            if hi - lo < 2:
                continue
            mid = (lo + hi) // 2
            a, b, c = t[lo], t[mid], t[hi]
            plan.append(
                (
                    mid,
                    lo,
                    hi,
                    (c - b) / (c - a),
                    (b - a) / (c - a),
                    math.sqrt((b - a) * (c - b) / (c - a)),
                )
            )
            nxt += [(lo, mid), (mid, hi)]
        queue = nxt
    return plan


def brownian_bridge(z: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """Map i.i.d. N(0,1) draws z (..., m) to i.i.d. N(0,1) *increments* of the Brownian path on
    ``times`` built by a Brownian bridge: z[..., 0] fixes W(t_m), z[..., 1] the midpoint, and so on.

    The output has the same law as z; only which input coordinate drives which feature of the path
    changes, which is what makes quasi-random points effective for path-dependent payoffs.
    The loop runs over dates (m of them), never over samples.
    """
    m = z.shape[-1]
    tt = times.to(z)
    w = [None] * (m + 1)
    w[0] = torch.zeros_like(z[..., 0])
    for j, (idx, lo, hi, wl, wr, sd) in enumerate(_bridge_plan(times)):
        if hi is None:
            w[idx] = sd * z[..., j]
        else:
            w[idx] = wl * w[lo] + wr * w[hi] + sd * z[..., j]
    path = torch.stack(w, -1)
    dt = torch.diff(torch.cat([tt.new_zeros(1), tt]))
    return path.diff(dim=-1) / dt.sqrt()


def _gauss_from_uniform(u: torch.Tensor, times: torch.Tensor, bridge: bool) -> torch.Tensor:
    u = u.to(device=times.device, dtype=times.dtype)  # the core samplers draw float64 on CPU
    eps = torch.finfo(u.dtype).eps
    z = torch.special.ndtri(u.clamp(eps, 1.0 - eps))
    return brownian_bridge(z, times) if bridge else z


# -- distributions ---------------------------------------------------------------------------------
class PathDistribution(D.Distribution):
    """Base class of path distributions. Subclasses give ``path(noise)``, ``noise(x)``,
    ``draw_noise(shape)``, ``log_prob(x)``, ``prices(x)`` and ``from_uniform(u)``."""

    has_rsample = True
    arg_constraints: dict = {}
    #: parameters along which x = path(noise) is a valid reparameterisation (pathwise method)
    pathwise_params: tuple[str, ...] = ("spot", "vol", "rate", "div", "maturity")
    #: whether ``lr_weights(z, need)`` gives closed-form LR weights from the standard normals
    closed_form_weights: bool = False

    def rsample(self, sample_shape=torch.Size()):
        return self.path(self.draw_noise(torch.Size(sample_shape)))

    def sample(self, sample_shape=torch.Size()):
        with torch.no_grad():
            return self.rsample(sample_shape)

    def prices(self, x: torch.Tensor) -> torch.Tensor:
        """Asset prices at the monitoring dates, shape (..., m)."""
        return x

    @property
    def discount(self) -> torch.Tensor:
        return torch.exp(-self.rate * self.maturity)

    @property
    def forward(self) -> torch.Tensor:
        """E[S_T] = S₀ e^{(r-q)T} (every model here has discounted S a martingale)."""
        return self.spot * torch.exp((self.rate - self.div) * self.maturity)


def _bcast(*ts):
    return torch.broadcast_tensors(*[torch.as_tensor(t) for t in ts])


class GBMPaths(PathDistribution):
    """Geometric Brownian motion with dividend yield, exact at the dates t_k = T φ_k.

    log S_{t_k} = log S_{t_{k-1}} + (r - q - σ²/2) Δt_k + σ √Δt_k Z_k,   Z_k ~ N(0, 1) i.i.d.
    """

    closed_form_weights = True

    def __init__(self, spot, vol, rate, div, maturity, fractions, bridge=False, validate_args=None):
        self.spot, self.vol, self.rate, self.div, self.maturity = _bcast(
            spot, vol, rate, div, maturity
        )
        check_parameters(
            spot=self.spot, vol=self.vol, rate=self.rate, div=self.div, maturity=self.maturity
        )
        self.fractions = fractions.to(self.spot)
        self.bridge = bridge
        dfrac = torch.diff(torch.cat([self.fractions.new_zeros(1), self.fractions]))
        self.dfrac = dfrac
        super().__init__(self.spot.shape, torch.Size([dfrac.numel()]), validate_args=False)

    # the grid
    def _dt(self):
        return self.maturity.unsqueeze(-1) * self.dfrac

    def _mu(self):
        return (self.rate - self.div - 0.5 * self.vol**2).unsqueeze(-1)

    def draw_noise(self, shape):
        return torch.randn(
            *shape,
            *self.batch_shape,
            *self.event_shape,
            dtype=self.spot.dtype,
            device=self.spot.device,
        )

    def path(self, z):
        dt = self._dt()
        drift = self._mu() * dt
        drift = torch.cat([drift[..., :1] + torch.log(self.spot).unsqueeze(-1), drift[..., 1:]], -1)
        inc = torch.addcmul(drift, self.vol.unsqueeze(-1) * dt.sqrt(), z)  # one fused pass
        if torch.is_grad_enabled() and inc.requires_grad:
            return torch.exp(torch.cumsum(inc, -1))
        return torch.cumsum(inc, -1, out=inc).exp_()

    def log_increments(self, x):
        logx = torch.log(x)
        s0 = torch.log(self.spot).unsqueeze(-1)
        shape = broadcast_shapes(logx.shape, s0.shape)
        logx = logx.expand(shape)
        return logx - torch.cat([s0.expand(*shape[:-1], 1), logx[..., :-1]], -1)

    def noise(self, x):
        dt = self._dt()
        return (self.log_increments(x) - self._mu() * dt) / (self.vol.unsqueeze(-1) * dt.sqrt())

    def log_prob(self, x):
        dt = self._dt()
        lp = _normal_logpdf(
            self.log_increments(x), self._mu() * dt, self.vol.unsqueeze(-1) ** 2 * dt
        )
        return (lp - torch.log(x)).sum(-1)

    def from_uniform(self, u):
        return self.path(_gauss_from_uniform(u, self.fractions, self.bridge))

    @property
    def mean(self):
        t = self.maturity.unsqueeze(-1) * self.fractions
        return self.spot.unsqueeze(-1) * torch.exp((self.rate - self.div).unsqueeze(-1) * t)

    def lr_weights(self, z, need):
        """Closed-form likelihood-ratio weights from the standardised increments z (..., m).

        With C = Z_1, A = Σ Z_k², W = Σ Z_k √Δt_k (= W_T), μ = r - q - σ²/2:
        ∂_S log p = C/(S₀σ√Δt₁);  ∂_σ log p = (A - m)/σ - W;  ∂_r log p = W/σ;
        ∂_T log p = μW/(σT) + (A - m)/(2T); and the second-order weights (s_a s_b + ∂_b s_a)
        ∂²_S: (C² - 1)/(S₀²σ²Δt₁) - C/(S₀²σ√Δt₁);  ∂_S∂_σ: s_S s_σ + (σ√Δt₁ - 2C)/(σ²√Δt₁S₀);
        ∂²_σ: s_σ² + 3W/σ - 3A/σ² + m/σ² - T. Tested against autograd scores of ``log_prob``.
        """
        S0, sig, T = self.spot, self.vol, self.maturity
        m = z.shape[-1]
        dt = self._dt()
        sq1 = dt[..., 0].sqrt()
        C = z[..., 0]
        out = {}
        if m == 1:
            A, W = C * C, C * sq1
        else:
            A = torch.linalg.vecdot(z, z) if {"vega", "theta", "vanna", "volga"} & need else None
            W = (
                torch.linalg.vecdot(z, dt.sqrt().to(z))
                if {"vega", "rho", "theta", "vanna", "volga"} & need
                else None
            )
        s_S = C / (S0 * sig * sq1)
        s_v = (A - m) / sig - W if A is not None else None
        if "delta" in need:
            out["delta"] = s_S
        if "gamma" in need:
            out["gamma"] = (C * C - 1) / (S0 * sig * sq1) ** 2 - C / (S0**2 * sig * sq1)
        if "vega" in need:
            out["vega"] = s_v
        if "rho" in need:
            out["rho"] = W / sig
        if "theta" in need:
            mu = self.rate - self.div - 0.5 * sig**2
            out["theta"] = mu * W / (sig * T) + (A - m) / (2 * T)
        if "vanna" in need:
            out["vanna"] = s_S * s_v + (sig * sq1 - 2 * C) / (sig**2 * sq1 * S0)
        if "volga" in need:
            out["volga"] = s_v * s_v + 3 * W / sig - 3 * A / sig**2 + m / sig**2 - T
        return out


class HestonPaths(PathDistribution):
    """Heston model by a full-truncation Euler scheme, with ``steps`` sub-steps per date.

    x = log S, v⁺ = max(v, 0), per step of length h:
        x' = x + (r - q - v⁺/2) h + √(v⁺h) Z₁
        v' = v + κ(θ_v - v⁺) h + ξ√(v⁺h) (ρ Z₁ + √(1-ρ²) Z₂)
    The event is (M, 2) = (price, variance) after each of the M = m·steps steps; the density of
    the scheme is a product of bivariate normals (v⁺ is floored at ``floor`` so the density stays
    proper; when the Feller condition 2κθ_v > ξ² holds the floor is essentially never reached).
    """

    def __init__(
        self,
        spot,
        vol,
        rate,
        div,
        maturity,
        kappa,
        mean_var,
        xi,
        corr,
        fractions,
        steps=4,
        bridge=False,
        floor=1e-10,
        validate_args=None,
    ):
        (
            self.spot,
            self.vol,
            self.rate,
            self.div,
            self.maturity,
            self.kappa,
            self.mean_var,
            self.xi,
            self.corr,
        ) = _bcast(spot, vol, rate, div, maturity, kappa, mean_var, xi, corr)
        check_parameters(
            spot=self.spot,
            vol=self.vol,
            rate=self.rate,
            div=self.div,
            maturity=self.maturity,
            kappa=self.kappa,
            mean_var=self.mean_var,
            xi=self.xi,
            corr=self.corr,
        )
        self.fractions = fractions.to(self.spot)
        self.steps, self.bridge, self.floor = int(steps), bridge, floor
        dfrac = torch.diff(torch.cat([self.fractions.new_zeros(1), self.fractions]))
        self.hfrac = (dfrac / self.steps).repeat_interleave(self.steps)
        self.grid = torch.cumsum(self.hfrac, 0)
        M = self.hfrac.numel()
        super().__init__(self.spot.shape, torch.Size([M, 2]), validate_args=False)

    def _h(self):
        return self.maturity.unsqueeze(-1) * self.hfrac

    def _p(self):
        u = lambda t: t.unsqueeze(-1)  # noqa: E731
        return (
            u(self.spot),
            u(self.vol),
            u(self.rate),
            u(self.div),
            u(self.kappa),
            u(self.mean_var),
            u(self.xi),
            u(self.corr),
        )

    def draw_noise(self, shape):
        return torch.randn(
            *shape,
            *self.batch_shape,
            *self.event_shape,
            dtype=self.spot.dtype,
            device=self.spot.device,
        )

    def path(self, z):
        bs = broadcast_shapes(self.spot.shape, z.shape[:-2])
        h = self._h()
        x = torch.log(self.spot).expand(bs)
        v = (self.vol**2).expand(bs)
        r, q, k, th, xi, rho = self.rate, self.div, self.kappa, self.mean_var, self.xi, self.corr
        sr = torch.sqrt(1 - rho**2)
        xs, vs = [], []
        for i in range(h.shape[-1]):  # a loop over time steps, vectorised over paths
            hi = h[..., i]
            vp = v.clamp_min(self.floor)
            sd = torch.sqrt(vp * hi)
            z1, z2 = z[..., i, 0], z[..., i, 1]
            x = x + (r - q - 0.5 * vp) * hi + sd * z1
            v = v + k * (th - vp) * hi + xi * sd * (rho * z1 + sr * z2)
            xs.append(x)
            vs.append(v)
        return torch.stack([torch.exp(torch.stack(xs, -1)), torch.stack(vs, -1)], -1)

    def _steps(self, x):
        s0, vol, r, q, k, th, xi, rho = self._p()
        logs, v = torch.log(x[..., 0]), x[..., 1]
        shape = broadcast_shapes(logs.shape, s0.shape)
        logs, v = logs.expand(shape), v.expand(shape)
        lx_prev = torch.cat([torch.log(s0).expand(*shape[:-1], 1), logs[..., :-1]], -1)
        v_prev = torch.cat([(vol**2).expand(*shape[:-1], 1), v[..., :-1]], -1)
        vp = v_prev.clamp_min(self.floor)
        h = self._h()
        mx = (r - q - 0.5 * vp) * h
        dx = logs - lx_prev
        mv = v_prev + k * (th - vp) * h
        return dx, mx, vp * h, v, mv, xi, rho, logs

    def noise(self, x):
        dx, mx, var, v, mv, xi, rho, _ = self._steps(x)
        z1 = (dx - mx) / var.sqrt()
        z2 = (v - mv - xi * rho * var.sqrt() * z1) / (xi * torch.sqrt((1 - rho**2) * var))
        return torch.stack([z1, z2], -1)

    def log_prob(self, x):
        dx, mx, var, v, mv, xi, rho, logs = self._steps(x)
        lp = _normal_logpdf(dx, mx, var)
        lp = lp + _normal_logpdf(v, mv + xi * rho * (dx - mx), xi**2 * (1 - rho**2) * var)
        return (lp - logs).sum(-1)

    def prices(self, x):
        idx = torch.arange(self.steps - 1, x.shape[-2], self.steps, device=x.device)
        return x[..., idx, 0]

    def from_uniform(self, u):
        u = u.to(device=self.spot.device, dtype=self.spot.dtype)
        eps = torch.finfo(u.dtype).eps
        z = torch.special.ndtri(u.clamp(eps, 1 - eps))
        if self.bridge:
            g = self.grid.to(z)
            z = torch.stack([brownian_bridge(z[..., 0], g), brownian_bridge(z[..., 1], g)], -1)
        return self.path(z)


class MertonPaths(PathDistribution):
    """Merton (1976) jump diffusion at the dates, recording the jump counts.

    Event (m, 2): [..., 0] the prices S_{t_k}, [..., 1] the jump counts N_k ~ Poisson(λΔt_k);
    log S_{t_k} - log S_{t_{k-1}} | N_k ~ N((r - q - λk̄ - σ²/2)Δt_k + N_k μ_J, σ²Δt_k + N_k σ_J²).
    The path is reparameterisable in spot, vol, rate and div (N does not depend on them) but not in
    maturity (N's law does): pathwise θ is refused, LR θ is fine.
    """

    pathwise_params = ("spot", "vol", "rate", "div")

    def __init__(
        self,
        spot,
        vol,
        rate,
        div,
        maturity,
        jump_rate,
        jump_mean,
        jump_vol,
        fractions,
        bridge=False,
        validate_args=None,
    ):
        (
            self.spot,
            self.vol,
            self.rate,
            self.div,
            self.maturity,
            self.jump_rate,
            self.jump_mean,
            self.jump_vol,
        ) = _bcast(spot, vol, rate, div, maturity, jump_rate, jump_mean, jump_vol)
        check_parameters(
            spot=self.spot,
            vol=self.vol,
            rate=self.rate,
            div=self.div,
            maturity=self.maturity,
            jump_rate=self.jump_rate,
            jump_mean=self.jump_mean,
            jump_vol=self.jump_vol,
        )
        self.fractions = fractions.to(self.spot)
        self.bridge = bridge
        self.dfrac = torch.diff(torch.cat([self.fractions.new_zeros(1), self.fractions]))
        super().__init__(self.spot.shape, torch.Size([self.dfrac.numel(), 2]), validate_args=False)

    def _dt(self):
        return self.maturity.unsqueeze(-1) * self.dfrac

    def _cond(self, n):
        u = lambda t: t.unsqueeze(-1)  # noqa: E731
        dt = self._dt()
        kbar = torch.exp(self.jump_mean + 0.5 * self.jump_vol**2) - 1
        mean = (u(self.rate - self.div - self.jump_rate * kbar - 0.5 * self.vol**2)) * dt + n * u(
            self.jump_mean
        )
        var = u(self.vol) ** 2 * dt + n * u(self.jump_vol) ** 2
        return mean, var

    def draw_noise(self, shape):
        full = (*shape, *self.batch_shape, self.dfrac.numel())
        z = torch.randn(*full, dtype=self.spot.dtype, device=self.spot.device)
        lam = (self.jump_rate.unsqueeze(-1) * self._dt()).detach().expand(full)
        n = torch.poisson(lam)
        return torch.stack([z, n], -1)

    def path(self, e):
        z, n = e[..., 0], e[..., 1]
        mean, var = self._cond(n)
        logs = torch.log(self.spot).unsqueeze(-1) + torch.cumsum(mean + var.sqrt() * z, -1)
        return torch.stack([torch.exp(logs), n.expand_as(logs)], -1)

    def _inc(self, x):
        logs, n = torch.log(x[..., 0]), x[..., 1]
        s0 = torch.log(self.spot).unsqueeze(-1)
        shape = broadcast_shapes(logs.shape, s0.shape)
        logs, n = logs.expand(shape), n.expand(shape)
        prev = torch.cat([s0.expand(*shape[:-1], 1), logs[..., :-1]], -1)
        return logs - prev, n, logs

    def noise(self, x):
        d, n, _ = self._inc(x)
        mean, var = self._cond(n)
        return torch.stack([(d - mean) / var.sqrt(), n], -1)

    def log_prob(self, x):
        d, n, logs = self._inc(x)
        mean, var = self._cond(n)
        lam = self.jump_rate.unsqueeze(-1) * self._dt()
        lp_n = torch.xlogy(n, lam) - lam - torch.lgamma(n + 1)
        return (_normal_logpdf(d, mean, var) + lp_n - logs).sum(-1)

    def prices(self, x):
        return x[..., 0]

    def from_uniform(self, u):
        from scipy.stats import poisson

        z = _gauss_from_uniform(u[..., 0], self.fractions, self.bridge)
        lam = (self.jump_rate.unsqueeze(-1) * self._dt()).detach().expand(u.shape[:-1])
        eps = torch.finfo(u.dtype).eps
        uu = u[..., 1].clamp(eps, 1 - eps)
        n = poisson.ppf(uu.cpu().double().numpy(), lam.cpu().double().numpy())
        n = torch.as_tensor(n, dtype=z.dtype, device=z.device)
        return self.path(torch.stack([z, n], -1))


@register_icdf(PathDistribution)
def _icdf_path(dist, u):
    return dist.from_uniform(u)
