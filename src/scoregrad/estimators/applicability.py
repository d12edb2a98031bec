"""When an estimator can be right: the checks behind ``Estimator.supports`` and its errors.

* ``unwrap`` looks through ``Independent`` wrappers (same samples, same parameters).
* ``moving_support(dist)`` finds a support bound that depends on tensors requiring grad (Uniform(0, θ),
  Pareto's scale, a parameterised affine transform of a bounded base). The score function, and every
  estimator built on ∇θ log p, is then wrong: by Leibniz' rule

      ∂θ ∫_{a(θ)}^{b(θ)} p(x; θ) f(x) dx = ∫ ∂θ p f dx + b'(θ) p(b) f(b) - a'(θ) p(a) f(a),

  and the boundary terms are missing from E[f ∇θ log p].
* ``not_applicable`` builds the ``EstimatorNotApplicable`` that says why and lists, from the
  registry, the estimators that do apply.

>>> import torch
>>> from torch.distributions import Uniform
>>> theta = torch.tensor(2.0, requires_grad=True)
>>> moving_support(Uniform(0.0, theta)) is not None, moving_support(Uniform(0.0, 2.0))
(True, None)
"""

from __future__ import annotations

import math

import torch
import torch.distributions as D
from torch.distributions import constraints

from ..errors import EstimatorNotApplicable

__all__ = ["unwrap", "moving_support", "implements", "not_applicable", "family_reason"]


def unwrap(dist: D.Distribution) -> D.Distribution:
    """The base distribution under any ``Independent`` wrappers (same samples, same parameters)."""
    while isinstance(dist, D.Independent):
        dist = dist.base_dist
    return dist


def implements(dist: D.Distribution, method: str) -> bool:
    """Whether ``dist``'s class overrides ``Distribution.<method>`` (else it raises
    NotImplementedError)."""
    return getattr(type(dist), method, None) is not getattr(D.Distribution, method)


def _tensors(obj, seen=None) -> list[torch.Tensor]:
    """Tensors held by a constraint or transform (its attributes, lists and parts, recursively;
    each object once, since a transform and its inverse refer to each other)."""
    seen = set() if seen is None else seen
    if id(obj) in seen or not hasattr(obj, "__dict__"):
        return []
    seen.add(id(obj))
    out = []
    for v in vars(obj).values():
        items = v if isinstance(v, list | tuple) else (v,)
        for item in items:
            if isinstance(item, torch.Tensor):
                out.append(item)
            elif isinstance(item, constraints.Constraint | D.Transform):
                out += _tensors(item, seen)
    return out


def _bounds(support) -> list:
    """Finite lower/upper bounds of a (possibly independent-wrapped) interval-like constraint."""
    while hasattr(support, "base_constraint"):  # independent, mixture and similar wrappers
        support = support.base_constraint
    out = []
    for name in ("lower_bound", "upper_bound"):
        b = getattr(support, name, None)
        if b is None:
            continue
        t = torch.as_tensor(b, dtype=torch.get_default_dtype()) if not torch.is_tensor(b) else b
        if bool(torch.isfinite(t.detach()).any()):
            out.append(b)
    return out


def _moves(values: torch.Tensor, inputs: list[torch.Tensor]) -> bool:
    """Whether ``values`` has a finite non-zero derivative with respect to any of ``inputs``."""
    inputs = [t for t in inputs if t.requires_grad]
    if not inputs or not values.requires_grad:
        return False
    with torch.enable_grad():
        grads = torch.autograd.grad(
            values.sum(), inputs, retain_graph=True, allow_unused=True
        )  # fmt: skip
    for g in grads:
        if g is not None and bool((torch.isfinite(g) & (g != 0)).any()):
            return True
    return False


def moving_support(dist: D.Distribution) -> str | None:
    """A sentence naming the support bound of ``dist`` that moves with its parameters, or None.

    Looks at the support's own bounds (interval, greater_than, less_than, half-open interval, ...,
    under any ``independent`` wrapper), then through ``Independent`` and ``TransformedDistribution``
    wrappers: a bounded base whose bound a parameterised transform moves (an affine shift of an
    Exponential) moves the support too.
    """
    try:
        support = dist.support
    except NotImplementedError:
        support = None
    if support is not None:
        # any tensor the support constraint holds (interval bounds, under independent or mixture
        # wrappers, or a user's constraint) that requires grad moves the support
        if any(t.requires_grad for t in _tensors(support)):
            return (
                f"the support of {type(dist).__name__}, {support}, has a bound that depends on "
                "the parameters, so ∇θ log p misses the boundary term of Leibniz' rule"
            )
    if isinstance(dist, D.Independent):
        return moving_support(dist.base_dist)
    if isinstance(dist, D.TransformedDistribution):
        inner = moving_support(dist.base_dist)
        if inner is not None:
            return inner
        try:
            base_support = dist.base_dist.support
        except NotImplementedError:
            return None
        params = [t for tr in dist.transforms for t in _tensors(tr)]
        if not any(t.requires_grad for t in params):
            return None
        # the base's finite bounds, and ±∞ (a sigmoid maps them to 0 and 1, which an affine map
        # then moves); a bound that stays infinite (an affine map of ±∞) does not move
        candidates = [*_bounds(base_support), -math.inf, math.inf]
        for b in candidates:
            try:
                y = torch.as_tensor(b, dtype=_dtype(dist)).detach()
                with torch.enable_grad():
                    for tr in dist.transforms:
                        y = tr(y)
            except (RuntimeError, ValueError, IndexError, TypeError):
                continue  # a transform of events (stick-breaking, ...) that takes no scalar
            finite = torch.isfinite(y.detach())
            if bool(finite.any()) and _moves(torch.where(finite, y, 0.0), params):
                where = "±∞" if not math.isfinite(float(torch.as_tensor(b).flatten()[0])) else b
                return (
                    f"the transforms of {type(dist).__name__} move the bound {where} of its base "
                    f"{type(dist.base_dist).__name__}'s support with the parameters, so "
                    "∇θ log p misses the boundary term of Leibniz' rule"
                )
    return None


def _dtype(dist) -> torch.dtype:
    for v in vars(unwrap(dist)).values():
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            return v.dtype
    if isinstance(dist, D.TransformedDistribution):
        return _dtype(dist.base_dist)
    return torch.get_default_dtype()


def family_reason(dist: D.Distribution, families: tuple[type, ...], exclude=()) -> str | None:
    """None if the family under ``Independent`` wrappers is one of ``families`` (and none of
    ``exclude``), else the reason."""
    base = unwrap(dist)
    if isinstance(base, families) and not isinstance(base, tuple(exclude)):
        return None
    want = " or ".join(f.__name__ for f in families)
    return f"it needs {want} random variables, got {type(base).__name__}"


def not_applicable(estimator: str, dist: D.Distribution, why: str) -> EstimatorNotApplicable:
    """An EstimatorNotApplicable that says why and names the registered estimators that apply."""
    from .registry import applicable, registered

    table = registered()
    names = [f"{name} ({table[name].__name__})" for name in applicable(dist)]
    listed = ", ".join(names) if names else "none of the registered estimators"
    return EstimatorNotApplicable(
        f"{estimator} cannot be used here: {why}. Estimators that apply to "
        f"{type(unwrap(dist)).__name__} here: {listed}."
    )
