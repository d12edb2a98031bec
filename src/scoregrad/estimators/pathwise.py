"""The pathwise (reparameterisation) estimator.

If x = g(ε; θ) with ε independent of θ, then

    ∇θ E_{p(x;θ)}[f(x)] = E_ε[∇x f(g(ε; θ)) ∇θ g(ε; θ)] ≈ (1/n) Σ_i ∇θ f(g(ε_i; θ)).

Any torch family with ``rsample`` works: location-scale families (Normal, MultivariateNormal,
Laplace, ...) by an explicit g, and Gamma, Beta and Dirichlet by torch's *implicit*
reparameterisation, ∇θ x = -(∂F/∂θ)/(∂F/∂x) with F the CDF (Figurnov, Mohamed & Mnih 2018,
"Implicit Reparameterization Gradients"). f must be differentiable (written in torch operations);
it receives samples that carry the graph. Reference: Mohamed et al. 2020 §5; Kingma & Welling 2014.

Per-sample gradients cost one backward pass: the parameters are expanded over the sample axis so
row i of each gradient belongs to sample i (or, when ``dist_fn`` cannot broadcast, backward passes
batched with ``is_grads_batched`` over batches of ``FALLBACK_BATCH`` samples: O(n) time and memory).

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

from ..core.evaluate import check_not_using, refuse_direct_use
from ..core.model import SampleModel, build_distribution
from .applicability import not_applicable
from .base import Contributions, Estimator
from .registry import register_estimator

__all__ = ["Pathwise", "pathwise_contributions", "check_derivative"]


def _varies(fx: torch.Tensor) -> bool:
    flat = fx.detach().reshape(fx.shape[0], -1)
    return flat.shape[0] > 1 and bool((flat != flat[:1]).any())


def check_derivative(dx: torch.Tensor | None, fx: torch.Tensor, dist, estimator: str) -> None:
    """Refuse an f whose derivative with respect to the samples is zero (or missing) at every
    sample while its values vary: a step function (floor, round, comparisons), whose pathwise
    gradient is 0 although the expectation moves (the mass crossing each step is missed)."""
    if _varies(fx) and (dx is None or not bool((dx != 0).any())):
        raise not_applicable(
            estimator, dist,
            "f's derivative with respect to the samples is zero at every sample while its values "
            "vary, so f is piecewise constant (floor, round, a comparison, an indicator) and the "
            "pathwise gradient would be 0 whatever the true gradient; use score_function or "
            "measure_valued, which only evaluate f",
        )  # fmt: skip


def watch_derivative(x: torch.Tensor, fx: torch.Tensor, dist, estimator: str) -> None:
    """``check_derivative`` for the ``expectation`` door, at no extra cost: a hook on the samples
    checks their gradient when the caller's backward pass reaches them."""
    if not x.requires_grad or not _varies(fx):
        return

    def hook(grad):
        if not bool((grad != 0).any()):
            check_derivative(None, fx, dist, estimator)
        return grad

    x.register_hook(hook)


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
    evaluator,
    dist_fn,
    params,
    n,
    draw: Callable[[D.Distribution, tuple], torch.Tensor],
    name: str,
    require: Callable[[D.Distribution], None] | None = None,
) -> Contributions:
    """Per-sample gradients of f(draw(dist)) with respect to ``params`` in one backward pass.

    ``draw(dist, sample_shape)`` returns a reparameterised sample (e.g. ``dist.rsample(shape)``);
    ``require(dist)``, if given, refuses a distribution before f is evaluated.
    """
    model = SampleModel.expand(dist_fn, params, n, through_samples=True)
    if require is not None:
        require(model.dist)
    with torch.enable_grad():
        if model.expanded:
            x = draw(model.dist, ())
            fx = differentiable_eval(evaluator, x, model.dist, name)
            leaves = model.leaves
            # one backward pass serves the gradients and check_not_using: the expanded leaves are
            # detached from the user's parameters, so any gradient reaching those is f's direct use
            watched = [k for k, p in params.items() if p.requires_grad]
            wrt = ([x] if x.requires_grad else []) + list(leaves.values())
            n_wrt = len(wrt)
            grads_all = torch.autograd.grad(
                fx.sum(), wrt + [params[k] for k in watched], allow_unused=True
            )
            outs, direct = list(grads_all[:n_wrt]), grads_all[n_wrt:]
            refuse_direct_use([k for k, d in zip(watched, direct, strict=True) if d is not None])
            dx = outs.pop(0) if x.requires_grad else None
            check_derivative(dx, fx, model.dist, name)
            grads = {
                k: (o if o is not None else torch.zeros_like(v))
                for (k, v), o in zip(leaves.items(), outs, strict=True)
            }
        else:
            # batches of FALLBACK_BATCH samples, each its own graph (dist_fn included): the
            # batched backward over a batch's rows costs batch × its graph, so O(n · batch)
            leaves = {k: p.detach().requires_grad_() for k, p in params.items()}
            values, dxs, rows = [], [], {k: [] for k in leaves}
            for start in range(0, n, FALLBACK_BATCH):
                m = min(FALLBACK_BATCH, n - start)
                dist = build_distribution(dist_fn, leaves)
                x = draw(dist, (m,))
                fx = differentiable_eval(evaluator, x, dist, name)
                check_not_using(fx, params, "f")
                dx = None
                if x.requires_grad:
                    (dx,) = torch.autograd.grad(fx.sum(), x, retain_graph=True, allow_unused=True)
                dxs.append(dx)
                for k, g in _batched_rows(fx, leaves, m).items():
                    rows[k].append(g)
                values.append(fx.detach())
            fx = values[0] if len(values) == 1 else torch.cat(values)
            dx = None if any(d is None for d in dxs) else torch.cat([d.reshape(-1) for d in dxs])
            check_derivative(dx, fx, dist, name)
            grads = {k: r[0] if len(r) == 1 else torch.cat(r) for k, r in rows.items()}
    return Contributions(values=fx.detach(), grads=grads, block=1)


#: samples per graph in the fallback for a dist_fn that cannot broadcast over a sample axis
FALLBACK_BATCH = 1024


#: most elements of one block of the identity that ``_batched_rows`` backpropagates at once
BATCHED_ELEMENTS = 2**22


def _batched_rows(fx: torch.Tensor, leaves: dict, n: int) -> dict[str, torch.Tensor]:
    """Row i of each gradient: ∂f(x_i)/∂leaf, by backward passes batched over blocks of rows of
    the n × n identity (``is_grads_batched``), each block at most ``BATCHED_ELEMENTS`` elements
    so that memory stays O(n) per row whatever n (the whole identity at n = 10⁵ is 40 GB)."""
    block = max(1, min(n, BATCHED_ELEMENTS // n))
    parts: dict[str, list] = {k: [] for k in leaves}
    for start in range(0, n, block):
        stop = min(start + block, n)
        eye = torch.zeros(stop - start, n, dtype=fx.dtype, device=fx.device)
        eye[:, start:stop].fill_diagonal_(1.0)
        outs = torch.autograd.grad(
            fx, list(leaves.values()), grad_outputs=eye, is_grads_batched=True,
            allow_unused=True, retain_graph=stop < n,
        )  # fmt: skip
        for (k, v), o in zip(leaves.items(), outs, strict=True):
            parts[k].append(o if o is not None else torch.zeros(stop - start, *v.shape,
                                                                 dtype=v.dtype, device=v.device))  # fmt: skip
    return {k: p[0] if len(p) == 1 else torch.cat(p) for k, p in parts.items()}


def _rsample(dist, shape):
    return dist.rsample(shape)


def pathwise_surrogate(evaluator, dist, x, name: str):
    """(value, surrogate) = mean of f(x) over the reparameterised samples x, with the zero-
    derivative check armed on x."""
    fx = differentiable_eval(evaluator, x, dist, name)
    watch_derivative(x, fx, dist, name)
    surrogate = fx.mean(0).sum()
    return surrogate.detach(), surrogate


@register_estimator
class Pathwise(Estimator):
    """Reparameterisation gradient for any family with ``rsample`` and a differentiable f.

    Declares: unbiased; needs ``rsample`` and f differentiable torch code (so no executor); one
    evaluation per sample. Refuses an f that is piecewise constant in x (zero derivative at every
    sample while f varies), whose pathwise gradient would be 0.
    """

    name = "pathwise"
    needs_differentiable_f = True
    needs_rsample = True

    def contributions(self, evaluator, dist_fn, params, n, context=None) -> Contributions:
        return pathwise_contributions(
            evaluator, dist_fn, params, n, _rsample, "Pathwise", require=self.require
        )

    def surrogate(self, evaluator, dist, n, context=None):
        self.require(dist)
        return pathwise_surrogate(evaluator, dist, dist.rsample((n,)), "Pathwise")
