"""The user-facing path models: parameter values plus the path distribution they build.

``GBM``, ``Heston`` and ``Merton`` hold the parameter values (numbers, or tensors for a batch of
options) and the monitoring dates, check them once (``scoregrad.finance.parameters``: a NaN or
infinite value is refused by name), give leaf tensors (``params``) and build the
``torch.distributions`` path distribution at given parameter tensors (``dist``; the classes are in
``scoregrad.finance.paths``, declared by each model as ``paths``).

>>> import torch
>>> m = GBM(spot=100.0, vol=0.2, rate=0.05, maturity=1.0, dates=4)
>>> d = m.dist(**m.params())
>>> x = d.sample((3,))
>>> tuple(x.shape), tuple(d.log_prob(x).shape)
((3, 4), (3,))
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real

import torch

from .parameters import broadcast_shapes, check_parameters, fractions_of
from .paths import GBMPaths, HestonPaths, MertonPaths, PathDistribution, brownian_bridge

__all__ = [
    "Model",
    "GBM",
    "Heston",
    "Merton",
    "MODELS",
    # the path distributions and helpers, importable from here as before the split
    "PathDistribution",
    "GBMPaths",
    "HestonPaths",
    "MertonPaths",
    "brownian_bridge",
    "broadcast_shapes",
    "fractions_of",
]


class Model:
    """A path model with parameter values: ``params()`` gives leaf tensors, ``dist(**params)``
    the ``PathDistribution``. Subclasses: ``GBM``, ``Heston``, ``Merton``."""

    name = "model"
    extra: tuple[str, ...] = ()
    #: the ``PathDistribution`` class ``dist`` builds (declares closed-form weights and the
    #: parameters the pathwise method may differentiate)
    paths: type[PathDistribution] = PathDistribution

    def __init__(self, spot, vol, rate=0.0, div=0.0, maturity=1.0, dates=1, bridge=False, **extra):
        self.values = {
            "spot": spot,
            "vol": vol,
            "rate": rate,
            "div": div,
            "maturity": maturity,
            **extra,
        }
        check_parameters(**self.values)
        self.fractions = fractions_of(dates)
        self.bridge = bridge
        self._memo: dict = {}

    @property
    def n_dates(self) -> int:
        return self.fractions.numel()

    def params(self, dtype=torch.float64, device=None) -> dict[str, torch.Tensor]:
        """Leaf tensors (requires_grad) of every parameter, in ``dtype`` on ``device``."""
        return {
            k: torch.as_tensor(v, dtype=dtype, device=device).clone().requires_grad_()
            for k, v in self.values.items()
        }

    def dist(self, **p) -> PathDistribution:
        raise NotImplementedError

    def memo(self, key, build):
        """``build()``, memoised under ``key`` while the parameter values are the same numbers.

        Estimates derive constants from the parameters (the GBM kernel's LR coefficients); a
        model whose values are all Python numbers keeps the last few, so repeated estimates
        prepare nothing. Values are compared each call, so editing ``values`` is safe; tensor or
        array values (which can change in place) are never memoised."""
        vals = tuple(self.values.values())
        if not all(isinstance(v, Real) for v in vals):
            return build()
        hit = self._memo.get(key)
        if hit is not None and hit[0] == vals:
            return hit[1]
        out = build()
        if len(self._memo) >= 8:
            self._memo.pop(next(iter(self._memo)))
        self._memo[key] = (vals, out)
        return out

    def batch_shape(self) -> torch.Size:
        return broadcast_shapes(*[_shape(v) for v in self.values.values()])

    def __repr__(self):
        vals = ", ".join(f"{k}={_fmt(v)}" for k, v in self.values.items())
        return f"{type(self).__name__}({vals}, dates={self.n_dates})"


def _shape(v) -> tuple:
    return () if isinstance(v, Real) else tuple(torch.as_tensor(v).shape)


def _fmt(v):
    t = torch.as_tensor(v)
    return f"{t.item():g}" if t.numel() == 1 else str(t.tolist())


class GBM(Model):
    """Black-Scholes geometric Brownian motion with dividend yield (``GBMPaths``).

    >>> m = GBM(spot=100.0, vol=0.25, rate=0.1, div=0.03, maturity=0.2)
    >>> m.dist(**m.params()).mean.item() > 100
    True
    """

    name = "gbm"
    paths = GBMPaths

    def dist(self, spot, vol, rate, div, maturity, **_):
        return GBMPaths(spot, vol, rate, div, maturity, self.fractions, bridge=self.bridge)


class Heston(Model):
    """Heston stochastic volatility (``HestonPaths``): ``vol`` = √v₀, ``kappa`` mean reversion,
    ``mean_var`` long-run variance θ_v, ``xi`` vol of variance, ``corr`` ρ; ``steps`` Euler
    sub-steps per monitoring interval."""

    name = "heston"
    paths = HestonPaths

    def __init__(
        self,
        spot,
        vol,
        rate=0.0,
        div=0.0,
        maturity=1.0,
        dates=1,
        *,
        kappa=2.0,
        mean_var=0.04,
        xi=0.3,
        corr=-0.7,
        steps=16,
        bridge=False,
    ):
        super().__init__(
            spot,
            vol,
            rate,
            div,
            maturity,
            dates,
            bridge,
            kappa=kappa,
            mean_var=mean_var,
            xi=xi,
            corr=corr,
        )
        self.steps = int(steps)

    def dist(self, spot, vol, rate, div, maturity, kappa, mean_var, xi, corr, **_):
        return HestonPaths(
            spot,
            vol,
            rate,
            div,
            maturity,
            kappa,
            mean_var,
            xi,
            corr,
            self.fractions,
            steps=self.steps,
            bridge=self.bridge,
        )


class Merton(Model):
    """Merton jump diffusion (``MertonPaths``): ``jump_rate`` λ per year, log jump sizes
    N(``jump_mean``, ``jump_vol``²)."""

    name = "merton"
    paths = MertonPaths

    def __init__(
        self,
        spot,
        vol,
        rate=0.0,
        div=0.0,
        maturity=1.0,
        dates=1,
        *,
        jump_rate=0.5,
        jump_mean=-0.1,
        jump_vol=0.15,
        bridge=False,
    ):
        super().__init__(
            spot,
            vol,
            rate,
            div,
            maturity,
            dates,
            bridge,
            jump_rate=jump_rate,
            jump_mean=jump_mean,
            jump_vol=jump_vol,
        )

    def dist(self, spot, vol, rate, div, maturity, jump_rate, jump_mean, jump_vol, **_):
        return MertonPaths(
            spot,
            vol,
            rate,
            div,
            maturity,
            jump_rate,
            jump_mean,
            jump_vol,
            self.fractions,
            bridge=self.bridge,
        )


MODELS: Mapping[str, type[Model]] = {"gbm": GBM, "heston": Heston, "merton": Merton}
