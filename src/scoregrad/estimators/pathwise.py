"""The pathwise (reparameterisation) estimator.

If x = g(ε; θ) with ε independent of θ, then

    ∇θ E_{p(x;θ)}[f(x)] = E_ε[∇x f(g(ε; θ)) ∇θ g(ε; θ)] ≈ (1/n) Σ_i ∇θ f(g(ε_i; θ)).

Any torch family with ``rsample`` works: location-scale families (Normal, MultivariateNormal,
Laplace, ...) by an explicit g, and Gamma, Beta and Dirichlet by torch's *implicit*
reparameterisation, ∇θ x = -(∂F/∂θ)/(∂F/∂x) with F the CDF (Figurnov, Mohamed & Mnih 2018,
"Implicit Reparameterization Gradients"). f must be differentiable (written in torch operations);
it receives samples that carry the graph. Reference: Mohamed et al. 2020 §5; Kingma & Welling 2014.

Per-sample gradients cost one backward pass: the parameters are expanded over the sample axis so
row i of each gradient belongs to sample i (or, when ``dist_fn`` cannot broadcast, one batched
backward pass with ``is_grads_batched``).

>>> import torch, scoregrad as sg
>>> from torch.distributions import Gamma
>>> a = torch.tensor(2.0, requires_grad=True)
>>> est = sg.estimate_grad(lambda x: x, lambda a: Gamma(a, 1.0), {"a": a}, n=4000,
...                        estimator=Pathwise(), seed=0)
>>> abs(float(est.grad["a"]) - 1.0) < 4.42 * float(est.stderr["a"])      # d/dα E[x] = 1
True
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributions as D

from ..core.model import SampleModel, build_distribution
from ._common import not_applicable
from .base import Contributions, Estimator

__all__ = ["Pathwise", "pathwise_contributions"]


def differentiable_eval(evaluator, x, dist, estimator: str, keep_graph: bool = True):
    """f(x) keeping the graph from x; EstimatorNotApplicable when f is not differentiable."""
    try:
        fx = evaluator(x, differentiable=True)
    except (RuntimeError, TypeError) as e:
        raise not_applicable(
            estimator, dist,
            f"f could not be evaluated on samples that carry gradients ({e}); it must be written "
            "in differentiable torch operations",
        ) from e  # fmt: skip
    if not fx.requires_grad:
        raise not_applicable(
            estimator, dist,
            "f's output does not depend differentiably on its input (it returned a value without "
            "a gradient: a NumPy/Python computation, a comparison, or a detach)",
        )  # fmt: skip
    return fx


def pathwise_contributions(
    evaluator, dist_fn, params, n, draw: Callable[[D.Distribution, tuple], torch.Tensor], name: str
) -> Contributions:
    """Per-sample gradients of f(draw(dist)) with respect to ``params`` in one backward pass.

    ``draw(dist, sample_shape)`` returns a reparameterised sample (e.g. ``dist.rsample(shape)``).
    """
    model = SampleModel.expand(dist_fn, params, n)
    with torch.enable_grad():
        if model.expanded:
            x = draw(model.dist, ())
            fx = differentiable_eval(evaluator, x, model.dist, name)
            leaves = model.leaves
            outs = torch.autograd.grad(fx.sum(), list(leaves.values()), allow_unused=True)
            grads = {
                k: (o if o is not None else torch.zeros_like(v))
                for (k, v), o in zip(leaves.items(), outs, strict=True)
            }
        else:
            leaves = {k: p.detach().requires_grad_() for k, p in params.items()}
            dist = build_distribution(dist_fn, leaves)
            x = draw(dist, (n,))
            fx = differentiable_eval(evaluator, x, dist, name)
            eye = torch.eye(n, dtype=fx.dtype, device=fx.device)
            outs = torch.autograd.grad(
                fx, list(leaves.values()), grad_outputs=eye, is_grads_batched=True,
                allow_unused=True,
            )  # fmt: skip
            grads = {
                k: (o if o is not None else torch.zeros(n, *v.shape, dtype=v.dtype))
                for (k, v), o in zip(leaves.items(), outs, strict=True)
            }
    return Contributions(values=fx.detach(), grads=grads, block=1)


def _rsample(dist, shape):
    return dist.rsample(shape)


class Pathwise(Estimator):
    """Reparameterisation gradient for any family with ``rsample`` and a differentiable f."""

    name = "pathwise"

    def _check_family(self, dist):
        if not dist.has_rsample:
            raise not_applicable(
                "Pathwise", dist,
                f"{type(dist).__name__} has no reparameterised sampler (rsample), so samples "
                "cannot be differentiated with respect to the parameters",
            )  # fmt: skip

    def contributions(self, evaluator, dist_fn, params, n, context=None) -> Contributions:
        self._check_family(build_distribution(dist_fn, {k: p.detach() for k, p in params.items()}))
        return pathwise_contributions(evaluator, dist_fn, params, n, _rsample, "Pathwise")

    def surrogate(self, evaluator, dist, n, context=None):
        self._check_family(dist)
        x = dist.rsample((n,))
        fx = differentiable_eval(evaluator, x, dist, "Pathwise")
        surrogate = fx.mean(0).sum()
        return surrogate.detach(), surrogate
