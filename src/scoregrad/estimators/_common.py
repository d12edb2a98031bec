"""Shared plumbing for the estimators that work on a distribution's own parameters.

Estimators such as ARM, DisARM, REBAR/RELAX and measure-valued derivatives produce per-sample
gradients with respect to a distribution's *natural* parameters (Bernoulli logits, Normal loc and
scale, ...). ``NaturalParams`` pulls them back to the user's parameters by the chain rule, per
sample and vectorised: with an expanded model (parameters broadcast over the sample axis) it is one
backward pass with the per-sample gradients as ``grad_outputs``; otherwise a ``torch.func.vmap`` of
one vector-Jacobian product. For the ``expectation`` door, ``linear_term`` turns a gradient with
respect to natural parameters into a surrogate term of value zero whose gradient is that vector.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributions as D

from ..errors import EstimatorNotApplicable


def unwrap(dist: D.Distribution) -> D.Distribution:
    """The base distribution under any ``Independent`` wrappers (same samples, same parameters)."""
    while isinstance(dist, D.Independent):
        dist = dist.base_dist
    return dist


def applicable_estimators(dist: D.Distribution) -> list[str]:
    """Names of the scoregrad estimators that can handle ``dist`` (for error messages)."""
    from .measure_valued import has_mvd

    base = unwrap(dist)
    names = ["ScoreFunction", "RLOO", "VIMCO (for log-mean-exp objectives)"]
    if getattr(base, "has_rsample", False) or getattr(dist, "has_rsample", False):
        names.append("Pathwise")
    if has_mvd(base):
        names.append("MeasureValued")
    if isinstance(base, D.Bernoulli):
        names += ["ARM", "DisARM", "REBAR", "RELAX", "GumbelSoftmax", "StraightThrough"]
    if isinstance(base, D.Categorical) and not isinstance(base, D.OneHotCategorical):
        names += ["ARM", "DisARM", "GumbelSoftmax", "StraightThrough"]
    if isinstance(base, D.OneHotCategorical):
        names += ["GumbelSoftmax", "StraightThrough"]
    return names


def not_applicable(estimator: str, dist: D.Distribution, why: str) -> EstimatorNotApplicable:
    """An EstimatorNotApplicable that says why and names the estimators that do apply."""
    return EstimatorNotApplicable(
        f"{estimator} cannot be used here: {why}. Estimators that apply to "
        f"{type(unwrap(dist)).__name__}: {', '.join(applicable_estimators(dist))}."
    )


def require_family(dist, families: tuple[type, ...], estimator: str) -> D.Distribution:
    base = unwrap(dist)
    if not isinstance(base, families):
        want = " or ".join(f.__name__ for f in families)
        raise not_applicable(
            estimator, dist, f"it needs {want} random variables, got {type(base).__name__}"
        )
    return base


class NaturalParams:
    """Natural parameters t = getter(dist) of a prepared ``SampleModel``, with per-sample pullback.

    ``value`` is a tuple of tensors shaped (n, *t.shape) (broadcast over the sample axis), read with
    autograd enabled *before* any sampling, so lazily computed attributes (``probs``/``logits``)
    keep their graph. ``pullback(gs)`` maps per-sample gradients with respect to t (same shapes)
    to per-sample gradients with respect to the user's parameters, {name: (n, *param.shape)}.
    """

    def __init__(self, model, getter: Callable[[D.Distribution], tuple[torch.Tensor, ...]]):
        self.model = model
        n = model.n
        if model.expanded:
            with torch.enable_grad():
                self.tensors = tuple(getter(unwrap(model.dist)))
            self.value = tuple(t.detach() for t in self.tensors)
            self.needed = tuple(t.requires_grad for t in self.tensors)
        else:
            p0 = {k: p.detach() for k, p in model.params.items()}

            def fn(p):
                return tuple(getter(unwrap(model.dist_fn(**p))))

            vals, self._vjp = torch.func.vjp(fn, p0)
            self.value = tuple(v.detach().unsqueeze(0).expand(n, *v.shape) for v in vals)
            self.needed = tuple(True for _ in vals)

    def pullback(self, gs: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        model = self.model
        if model.expanded:
            leaves = list(model.leaves.values())
            pairs = [(t, g) for t, g in zip(self.tensors, gs, strict=True) if t.requires_grad]
            if not pairs:
                return {k: torch.zeros_like(v) for k, v in model.leaves.items()}
            outs = torch.autograd.grad(
                [t for t, _ in pairs],
                leaves,
                grad_outputs=[g.to(t) for t, g in pairs],
                allow_unused=True,
            )
            return {
                k: (o if o is not None else torch.zeros_like(v))
                for (k, v), o in zip(model.leaves.items(), outs, strict=True)
            }
        (out,) = torch.func.vmap(self._vjp)(tuple(g.detach() for g in gs))
        return {k: out[k] for k in model.params}


def linear_term(tensors: tuple[torch.Tensor, ...], grads: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Σ ⟨g, t - stop_grad(t)⟩: zero in value; its gradient through t is g (detached)."""
    total = None
    for t, g in zip(tensors, grads, strict=True):
        if not t.requires_grad:
            continue
        term = (g.detach().to(t) * (t - t.detach())).sum()
        total = term if total is None else total + term
    if total is None:
        ref = tensors[0]
        return torch.zeros((), dtype=ref.dtype, device=ref.device)
    return total
