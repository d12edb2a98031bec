"""Payoffs: functions of the simulated price path, undiscounted.

A payoff maps prices at the monitoring dates, shape (n, *batch, m), to one value per path and
option, shape (n, *batch): strikes given as a tensor of shape (B,) price B options on the same
paths (one simulation; ``estimate_greeks`` inserts the batch axes into the paths it passes, so
a payoff only has to broadcast). Every payoff states how far the pathwise method can
differentiate it:

* ``pathwise_order = 0``: discontinuous in the path (digitals, barriers): the pathwise derivative
  is zero almost surely and misses the jump, so pathwise Greeks are refused; use LR or mixed.
* ``pathwise_order = 1``: Lipschitz with kinks (calls, puts, Asians, lookbacks): pathwise first
  derivatives are unbiased (Glasserman 2004, §7.2), second derivatives (gamma) are not (the kink
  has zero second derivative a.s.); use mixed (pathwise then LR) or LR for gamma, vanna, volga.
* ``pathwise_order = 2``: smooth payoffs (e.g. a user's S_T²).

For the mixed estimator a payoff may split itself as f = f_smooth + f_rough (``smooth``): the smooth
part goes pathwise, the rough remainder by LR (Glasserman 2004, §7.3.3). Digitals smooth their
jump linearly over a half-width ε around the strike (default K σ √T); the remainder is non-zero
only near the strike, so its LR term has little variance.

>>> import torch
>>> S = torch.tensor([[90.0, 110.0], [100.0, 95.0]])      # two paths, two dates
>>> Call(torch.tensor([90.0, 100.0]))(S[:, None, :])      # batch axis: two strikes
tensor([[20., 10.],
        [ 5.,  0.]])
>>> ArithmeticAsian(100.0)(S)                               # averages 100 and 97.5
tensor([0., 0.])
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import ParameterError
from .parameters import broadcast_shapes

__all__ = [
    "Payoff",
    "Call",
    "Put",
    "CashDigital",
    "AssetDigital",
    "Barrier",
    "ArithmeticAsian",
    "GeometricAsian",
    "Lookback",
    "Custom",
    "PAYOFFS",
]


def _strike(k, what="strike") -> torch.Tensor:
    t = torch.as_tensor(k, dtype=torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ParameterError(
            f"{what} = {t.flatten()[:4].tolist()} is not a finite number (NaN or infinite): "
            f"a {what} is a price level > 0, e.g. 100."
        )
    if bool((t <= 0).any()):
        raise ParameterError(f"{what}s must be > 0, got {t.flatten()[:4].tolist()}.")
    return t


def _kind(option: str) -> str:
    if option not in ("call", "put"):
        raise ParameterError(f"option must be 'call' or 'put', got {option!r}.")
    return option


class Payoff:
    """Base class: ``__call__(S)`` with S (n, *batch, m) -> (n, *batch)."""

    pathwise_order: int = 0
    name = "payoff"

    @property
    def batch_shape(self) -> torch.Size:
        return torch.Size()

    def __call__(self, S: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def smooth(self, S: torch.Tensor) -> torch.Tensor | None:
        """The part of the payoff handled pathwise by the mixed estimator (None: all by LR)."""
        return self(S) if self.pathwise_order >= 1 else None

    def validate(self, spot: torch.Tensor) -> None:
        """Check the payoff makes sense at the initial spot (barriers override)."""

    #: whether the mixed estimator must set a smoothing width (``default_width``) first
    smoothing_width_needed = False

    def _k(self, S, K):
        if K.dtype == S.dtype and K.device == S.device:
            return K
        return K.to(dtype=S.dtype, device=S.device)

    def __repr__(self):
        return f"{type(self).__name__}()"


class _Vanilla(Payoff):
    def __init__(self, strike):
        self.strike = _strike(strike)

    @property
    def batch_shape(self):
        return self.strike.shape

    def __repr__(self):
        return f"{type(self).__name__}(strike={self.strike.tolist()})"


class Call(_Vanilla):
    """European call (S_T - K)⁺ on the last date."""

    pathwise_order = 1
    name = "call"

    def __call__(self, S):
        return torch.relu(S[..., -1] - self._k(S, self.strike))


class Put(_Vanilla):
    """European put (K - S_T)⁺ on the last date."""

    pathwise_order = 1
    name = "put"

    def __call__(self, S):
        return torch.relu(self._k(S, self.strike) - S[..., -1])


class _Digital(_Vanilla):
    def __init__(self, strike, option="call", width=None):
        super().__init__(strike)
        self.option = _kind(option)
        # smoothing half-width ε for the mixed estimator; None: K σ √T, set by estimate_greeks
        # (about one standard deviation of S_T; measured best or near-best for delta, gamma
        # and vega), or 5% of K when the payoff is used outside it
        self.width = width

    @property
    def smoothing_width_needed(self) -> bool:
        return self.width is None

    def default_width(self, params) -> torch.Tensor:
        """K σ √T broadcast over the option batch (strikes on the right, model batch on the
        left): about one standard deviation of S_T."""
        sd = (params["vol"] * params["maturity"].sqrt()).detach().cpu()
        return self.strike.to(sd) * sd

    def _indicator(self, x, K):
        return (x > K).to(x.dtype) if self.option == "call" else (x < K).to(x.dtype)

    def _ramp(self, x, K):
        eps = K * 0.05 if self.width is None else torch.as_tensor(self.width).to(K)
        up = ((x - (K - eps)) / (2 * eps)).clamp(0.0, 1.0)
        return up if self.option == "call" else 1.0 - up

    def __repr__(self):
        return f"{type(self).__name__}(strike={self.strike.tolist()}, option={self.option!r})"


class CashDigital(_Digital):
    """Cash-or-nothing: ``cash`` if S_T > K (call) or S_T < K (put), else 0."""

    name = "cash-digital"

    def __init__(self, strike, option="call", cash=1.0, width=None):
        super().__init__(strike, option, width)
        self.cash = float(cash)

    def __call__(self, S):
        return self.cash * self._indicator(S[..., -1], self._k(S, self.strike))

    def smooth(self, S):
        return self.cash * self._ramp(S[..., -1], self._k(S, self.strike))


class AssetDigital(_Digital):
    """Asset-or-nothing: S_T if S_T > K (call) or S_T < K (put), else 0."""

    name = "asset-digital"

    def __call__(self, S):
        x = S[..., -1]
        return x * self._indicator(x, self._k(S, self.strike))

    def smooth(self, S):
        x = S[..., -1]
        return x * self._ramp(x, self._k(S, self.strike))


class Barrier(_Vanilla):
    """Discretely monitored barrier option on a call or put, at every monitoring date.

    ``kind``: 'up-and-out', 'up-and-in', 'down-and-out', 'down-and-in'. Knocked (out or in) when a
    monitored price is at or beyond the barrier; a knocked-out option pays ``rebate`` at maturity.
    Discrete monitoring differs from the continuous formulas; Broadie, Glasserman & Kou (1997)
    shift the barrier by exp(±0.5826 σ √Δt) to relate them.
    """

    name = "barrier"

    def __init__(self, strike, barrier, kind="up-and-out", option="call", rebate=0.0):
        super().__init__(strike)
        kinds = ("up-and-out", "up-and-in", "down-and-out", "down-and-in")
        if kind not in kinds:
            raise ParameterError(f"barrier kind must be one of {kinds}, got {kind!r}.")
        self.barrier = _strike(barrier, "barrier")
        self.kind, self.option, self.rebate = kind, _kind(option), float(rebate)

    @property
    def batch_shape(self):
        return broadcast_shapes(self.strike.shape, self.barrier.shape)

    def _hit(self, S):
        H = self._k(S, self.barrier).unsqueeze(-1)
        return ((S >= H) if self.kind.startswith("up") else (S <= H)).any(-1)

    def __call__(self, S):
        x, K = S[..., -1], self._k(S, self.strike)
        van = torch.relu(x - K) if self.option == "call" else torch.relu(K - x)
        hit = self._hit(S).to(S.dtype)
        if self.kind.endswith("out"):
            return van * (1 - hit) + self.rebate * hit
        return van * hit

    def validate(self, spot):
        s = torch.as_tensor(spot).detach().double().cpu()
        H = self.barrier
        up = self.kind.startswith("up")
        breached = (s >= H) if up else (s <= H)
        if bool(breached.any()):
            alt = (
                "worth its rebate discounted: no simulation needed"
                if self.kind.endswith("out")
                else f"already a vanilla: price it with Call/Put ({self.option})"
            )
            raise ParameterError(
                f"the {self.kind} barrier {H.flatten()[:4].tolist()} is already breached at the "
                f"spot {s.flatten()[:4].tolist()}: the option is {alt}. Fix: move the barrier "
                f"{'above' if up else 'below'} the spot."
            )

    def __repr__(self):
        return (
            f"Barrier(strike={self.strike.tolist()}, barrier={self.barrier.tolist()}, "
            f"kind={self.kind!r}, option={self.option!r})"
        )


class ArithmeticAsian(_Vanilla):
    """Arithmetic-average price option: (mean_k S_{t_k} - K)⁺ (call) over the monitoring dates."""

    pathwise_order = 1
    name = "asian"

    def __init__(self, strike, option="call"):
        super().__init__(strike)
        self.option = _kind(option)

    def average(self, S):
        return S.mean(-1)

    def __call__(self, S):
        a, K = self.average(S), self._k(S, self.strike)
        return torch.relu(a - K) if self.option == "call" else torch.relu(K - a)


class GeometricAsian(ArithmeticAsian):
    """Geometric-average price option: (exp(mean_k log S_{t_k}) - K)⁺; closed form under GBM."""

    name = "geometric-asian"

    def average(self, S):
        return torch.exp(torch.log(S).mean(-1))


class Lookback(Payoff):
    """Lookback on the monitored prices. 'floating': S_T - min S (call) or max S - S_T (put);
    'fixed': (max S - K)⁺ (call) or (K - min S)⁺ (put). The spot S₀ itself is not monitored."""

    pathwise_order = 1
    name = "lookback"

    def __init__(self, strike=None, option="call", kind="floating"):
        if kind not in ("floating", "fixed"):
            raise ParameterError(f"lookback kind must be 'floating' or 'fixed', got {kind!r}.")
        if kind == "fixed" and strike is None:
            raise ParameterError("a fixed-strike lookback needs a strike, e.g. strike=100.")
        self.kind, self.option = kind, _kind(option)
        self.strike = None if strike is None else _strike(strike)

    @property
    def batch_shape(self):
        return torch.Size() if self.strike is None else self.strike.shape

    def __call__(self, S):
        hi, lo, x = S.max(-1).values, S.min(-1).values, S[..., -1]
        if self.kind == "floating":
            return x - lo if self.option == "call" else hi - x
        K = self._k(S, self.strike)
        return torch.relu(hi - K) if self.option == "call" else torch.relu(K - lo)


class Custom(Payoff):
    """Any function of the path: ``fn(S)`` with S (n, *batch, m) -> (n, *batch).

    Declare ``pathwise_order`` = 1 if fn is Lipschitz in the path and written in torch operations
    (so pathwise Greeks apply), 2 if it is also smooth; the default 0 allows LR (and mixed, which
    then is LR) only. ``batch_shape`` is the option batch fn returns beyond the path batch.

    >>> import torch
    >>> sq = Custom(lambda S: S[..., -1] ** 2, pathwise_order=2)
    >>> sq(torch.tensor([[1.0, 3.0]]))
    tensor([9.])
    """

    name = "custom"

    def __init__(self, fn: Callable, pathwise_order: int = 0, batch_shape=(), smooth=None):
        if not callable(fn):
            raise ParameterError(f"a custom payoff must be callable (path -> value), got {fn!r}.")
        self.fn, self.pathwise_order = fn, int(pathwise_order)
        self._batch = torch.Size(batch_shape)
        self._smooth = smooth

    @property
    def batch_shape(self):
        return self._batch

    def __call__(self, S):
        return self.fn(S)

    def smooth(self, S):
        if self._smooth is not None:
            return self._smooth(S)
        return super().smooth(S)


def as_payoff(p) -> Payoff:
    """A Payoff as is; a plain callable becomes ``Custom(p)`` (LR only)."""
    if isinstance(p, Payoff):
        return p
    if callable(p):
        return Custom(p)
    raise ParameterError(
        f"payoff must be a scoregrad.finance.payoffs.Payoff or a callable, got {p!r}."
    )


PAYOFFS = {
    "call": Call,
    "put": Put,
    "cash-digital": CashDigital,
    "asset-digital": AssetDigital,
    "barrier": Barrier,
    "asian": ArithmeticAsian,
    "geometric-asian": GeometricAsian,
    "lookback": Lookback,
}
