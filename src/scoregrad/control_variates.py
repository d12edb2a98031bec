"""Control variates for the score-function gradient, with coefficients that keep it unbiased.

A control variate is a function h(x) whose expectation E_θ[h] is known as a differentiable
function of θ. Then H(x) = h(x) ∇θ log p(x; θ) - ∇θ E_θ[h] has mean zero, and

    ĝ = (1/n) Σ_i [ (f(x_i) - b_i) ∇θ log p(x_i; θ) - c ⊙ H(x_i) ]

is unbiased for ∇θ E[f] for any coefficient c that is independent of sample i. The best c for
parameter element j is Cov(g_j, H_j) / Var(H_j). With ``coefficient="loo"`` (the default) it is
estimated, separately for every sample's block, from the *other* blocks only (leave-one-out,
``scoregrad.core.loo.loo_coefficient``),
which keeps the estimator exactly unbiased at the cost of no extra evaluations of f. A number
fixes c. The value estimate gets the same treatment with h(x) - E[h].

* ``ScoreControlVariate()``: h ≡ 1, so H = ∇ log p: a per-parameter optimal baseline.
* ``DeltaMethod(order=2)``: h is the Taylor expansion of f around the mean μ,
  h(x) = f(μ) + ∇f(μ)ᵀ(x-μ) + ½(x-μ)ᵀ∇²f(μ)(x-μ), E[h] = f(μ) + ½ tr(∇²f(μ) Σ) at θ, and
  differentiable in θ through μ(θ) and Σ(θ) (Paisley, Blei, Jordan 2012; Mohamed et al. 2020 §7.2).
  Needs f differentiable (torch ops) and a family with a mean and (co)variance.
* ``UserControlVariate(h, mean)``: any h with E[h] = mean(dist), e.g. h(x) = x, mean = dist.mean.

Reference: Mohamed, Rosca, Figurnov, Mnih 2020, "Monte Carlo Gradient Estimation in Machine
Learning", section 7.

>>> import torch, scoregrad as sg
>>> from torch.distributions import Normal
>>> mu = torch.tensor(1.0, requires_grad=True)
>>> est = sg.estimate_grad(lambda x: (x - 3) ** 2, lambda mu: Normal(mu, 1.0), {"mu": mu},
...     n=4096, estimator=sg.ScoreFunction(control_variate=DeltaMethod()), seed=0)
>>> round(float(est.grad["mu"]), 3)  # exact: 2 (mu - 3) = -4; the quadratic is its own Taylor series
-4.0
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributions as D

from .errors import ArgumentError, ControlVariateError, EstimatorNotApplicable

__all__ = ["ControlVariate", "ScoreControlVariate", "DeltaMethod", "UserControlVariate"]


class ControlVariate:
    """h(x) with E_θ[h] known; subclasses give ``functions`` → (h(x) of shape (n,), E_θ[h])."""

    #: whether it learns across calls (none here do; ``scoregrad.core.state`` is the contract)
    stateful: bool = False

    def __init__(self, coefficient: str | float = "loo"):
        if coefficient != "loo" and (
            isinstance(coefficient, bool) or not isinstance(coefficient, int | float)
        ):
            raise ArgumentError(
                f"coefficient must be 'loo' or a number, got {coefficient!r}. Fix: "
                "coefficient='loo' (fitted leave-one-out) or a fixed float such as 1.0."
            )
        self.coefficient = coefficient

    @property
    def uses_batch(self) -> bool:
        """Whether the coefficient is fitted from the batch (``"loo"``), and so needs the
        per-parameter gradient terms that only ``estimate_grad`` has."""
        return self.coefficient == "loo"

    def functions(self, x, f, dist: D.Distribution):
        """h(x) for the samples x (shape (n,)) and E[h] under `dist` (differentiable, or None
        when it is a constant)."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        """What it learned (nothing, for the control variates here)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def __repr__(self):
        return f"{type(self).__name__}(coefficient={self.coefficient!r})"


class ScoreControlVariate(ControlVariate):
    """h ≡ 1: H = ∇θ log p(x; θ) itself, with per-parameter-element optimal coefficients."""

    def functions(self, x, f, dist):
        dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
        return torch.ones(x.shape[0], dtype=dtype, device=x.device), None


class UserControlVariate(ControlVariate):
    """A user's h(x) (one value per sample) with known mean ``mean(dist)`` (a 0-d tensor).

    ``mean`` receives the distribution and must be differentiable in its parameters (torch
    operations on e.g. ``dist.mean``), since its gradient is the expectation of the gradient part
    of the control variate. Example: ``UserControlVariate(lambda x: x, lambda d: d.mean)``.
    """

    def __init__(self, h: Callable, mean: Callable, coefficient: str | float = "loo"):
        super().__init__(coefficient)
        self.h, self.mean = h, mean

    def functions(self, x, f, dist):
        h = torch.as_tensor(self.h(x))
        if h.shape != (x.shape[0],):
            raise ControlVariateError(
                f"control variate h returned shape {tuple(h.shape)}; it must return one value per "
                f"sample, shape ({x.shape[0]},)."
            )
        m = self.mean(dist)
        if not isinstance(m, torch.Tensor) or m.dim() != 0:
            shape = tuple(m.shape) if isinstance(m, torch.Tensor) else type(m).__name__
            raise ControlVariateError(
                f"control variate mean(dist) must return a 0-d tensor E[h] that depends "
                f"differentiably on the distribution's parameters; got {shape}. Fix: return a "
                "scalar torch expression (sum over elements if h sums them)."
            )
        return h.to(m), m


class DeltaMethod(ControlVariate):
    """Second- (or first-) order Taylor expansion of f around the mean, with exact expectation.

    ``f`` defaults to the function being estimated, which must then be differentiable torch code.
    Coefficient 1 (the default here) subtracts the whole expansion.
    """

    def __init__(self, f: Callable | None = None, order: int = 2, coefficient: str | float = 1.0):
        super().__init__(coefficient)
        if order not in (1, 2):
            raise ArgumentError(f"DeltaMethod order must be 1 or 2, got {order!r}.")
        self.f, self.order = f, order

    def functions(self, x, f, dist):
        fn = self.f or f
        try:
            mean = dist.mean
            cov = _covariance(dist)
        except (NotImplementedError, AttributeError) as e:
            raise EstimatorNotApplicable(
                f"DeltaMethod needs the mean and covariance of {type(dist).__name__}: {e}. "
                "Use ScoreControlVariate() or a UserControlVariate instead."
            ) from e
        if not torch.isfinite(mean).all():
            raise EstimatorNotApplicable(
                f"{type(dist).__name__} has no finite mean, so no Taylor expansion around it; "
                "use ScoreControlVariate() instead."
            )
        shape = mean.shape
        z0 = mean.detach().reshape(-1)

        def fz(z):
            out = fn(z.reshape(1, *shape))
            return torch.as_tensor(out).reshape(-1)[0]

        try:
            z = z0.clone().requires_grad_()
            f0 = fz(z)
            (g,) = torch.autograd.grad(f0, z, create_graph=self.order == 2)
            hess = torch.autograd.functional.hessian(fz, z0) if self.order == 2 else None
        except RuntimeError as e:
            raise EstimatorNotApplicable(
                "DeltaMethod differentiates f around the mean, but f is not differentiable torch "
                f"code ({e}). Use ScoreControlVariate() or a UserControlVariate."
            ) from e
        f0, g = f0.detach(), g.detach()
        dx = x.reshape(x.shape[0], -1).to(z0) - z0
        h = f0 + dx @ g
        dmu = mean.reshape(-1) - z0
        m = f0 + dmu @ g
        if hess is not None:
            hess = hess.detach()
            h = h + 0.5 * ((dx @ hess) * dx).sum(1)
            m = m + 0.5 * (dmu @ hess @ dmu + (hess * cov).sum())
        return h, m


def _covariance(dist: D.Distribution) -> torch.Tensor:
    cov = getattr(dist, "covariance_matrix", None)
    if cov is not None and dist.batch_shape == ():
        return cov
    return torch.diag(dist.variance.reshape(-1))
