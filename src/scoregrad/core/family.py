"""``Family``: a ``dist_fn`` that names a torch family and how its parameters are mapped, so
per-sample scores need no autograd pass.

``Family(D.Normal)`` builds ``Normal(loc=..., scale=...)`` from parameters named like the family's
own arguments; ``Family(D.Normal, unconstrained=True)`` maps each unconstrained value u through
torch's ``transform_to(arg_constraints[name])`` (scale = exp(u), probs = σ(u), logits and loc
unchanged), the parametrisation Pyro's constrained parameters use. Other keyword arguments are
fixed values (``Family(D.Normal, scale=1.0)``).

Because each map y = T(u) is elementwise and monotone, the chain rule is explicit,

    ∂ log p(x; y) / ∂u = ∂ log p / ∂y · T'(u),   T'(u) = sign(T) exp(log|det J_T|(u, y)),

so with the family's closed-form score (``core.model.register_score``) a per-sample score costs
a few elementwise operations, the same as a hand-written estimator: no expanded model, no backward
pass. Parameters broadcast against the batch are summed back to their own shape. Where a map is
not elementwise (a simplex's softmax) or the family has no closed-form score, a ``Family`` is
an ordinary ``dist_fn`` and the general (autograd) path runs.

>>> import torch, scoregrad as sg
>>> from torch.distributions import Normal
>>> fam = Family(Normal, unconstrained=True)
>>> fam(loc=torch.tensor(0.0), scale=torch.tensor(0.0)).scale              # exp(0)
tensor(1.)
>>> mu, s = torch.tensor(0.5, requires_grad=True), torch.tensor(0.0, requires_grad=True)
>>> est = sg.estimate_grad(lambda x: x ** 2, fam, {"loc": mu, "scale": s}, n=100_000, seed=0)
>>> abs(float(est.grad["loc"]) - 1.0) < 4.42 * float(est.stderr["loc"])  # d/dμ (μ² + σ²) = 2μ
True
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.distributions as D
from torch.distributions import constraints, transform_to

from .shapes import stopped

__all__ = ["Family"]


def _simplified(t: D.Transform) -> D.Transform:
    """``t`` without identity parts (torch's transform_to(positive) is exp followed by x ↦ 0 + 1·x)."""
    if isinstance(t, D.ComposeTransform):
        parts = [_simplified(p) for p in t.parts]
        parts = [p for p in parts if not _is_identity(p)]
        return parts[0] if len(parts) == 1 else D.ComposeTransform(parts)
    return t


def _is_identity(t: D.Transform) -> bool:
    if isinstance(t, D.ComposeTransform):
        return not t.parts
    if isinstance(t, D.AffineTransform):
        loc, scale = t.loc, t.scale
        return (
            isinstance(loc, int | float)
            and loc == 0
            and isinstance(scale, int | float)
            and scale == 1
        )
    return False


#: T'(u) from u and y = T(u) for the maps of torch's transform_to, without recomputing T (u may
#: carry its graph: a derivative that reads it stops it first)
_DERIVATIVES = {
    D.ExpTransform: lambda u, y: y,
    D.SigmoidTransform: lambda u, y: y * (1.0 - y),
}


def _derivative_fn(t: D.Transform):
    """u, y ↦ T'(u) (a constant: u's graph is not followed) for an elementwise monotone
    transform (looking through IndependentTransform), None for the identity; raises ValueError
    for a map that is not elementwise (a softmax)."""
    while isinstance(t, D.IndependentTransform):
        t = t.base_transform
    t = _simplified(t)
    if _is_identity(t):
        return None
    if t.event_dim != 0 or not isinstance(t.sign, int):
        raise ValueError("not an elementwise monotone map")
    known = _DERIVATIVES.get(type(t))
    if known is not None:
        return known
    return lambda u, y: t.sign * t.log_abs_det_jacobian(stopped(u), y).exp()


class Family:
    """A ``dist_fn`` for ``family`` (a torch.distributions class) from its own parameters, or from
    unconstrained values with ``unconstrained=True`` (see the module docstring); ``fixed`` are
    constant keyword arguments. Works as ``dist_fn`` wherever one is taken."""

    def __init__(self, family: type, unconstrained: bool = False, **fixed):
        if not (isinstance(family, type) and issubclass(family, D.Distribution)):
            from ..errors import ParameterError

            raise ParameterError(
                f"Family takes a torch.distributions class, got {family!r}. Fix: e.g. "
                "sg.Family(torch.distributions.Normal), or pass a function as dist_fn."
            )
        self.family = family
        self.unconstrained = unconstrained
        self.fixed = fixed
        self._transforms: dict[str, D.Transform] = {}
        self._derivatives: dict[str, object] = {}  # name -> u, y ↦ T'(u); None: identity

    def transform(self, name: str) -> D.Transform:
        """The map from the user's value to the family's parameter ``name`` (identity unless
        unconstrained)."""
        t = self._transforms.get(name)
        if t is None:
            c = self.family.arg_constraints.get(name) if self.unconstrained else None
            t = _simplified(transform_to(c) if c is not None else transform_to(constraints.real))
            self._transforms[name] = t
        return t

    def _derivative(self, name: str):
        """u, y ↦ T'(u) for parameter ``name`` (None: identity); False where not elementwise."""
        if name not in self._derivatives:
            try:
                self._derivatives[name] = (
                    _derivative_fn(self.transform(name)) if self.unconstrained else None
                )
            except (ValueError, NotImplementedError):
                self._derivatives[name] = False
        return self._derivatives[name]

    def __call__(self, **params) -> D.Distribution:
        return self._build(params)

    def _build(self, params, **options) -> D.Distribution:
        if self.unconstrained:
            params = {k: self.transform(k)(v) for k, v in params.items()}
        return self.family(**params, **self.fixed, **options)

    def checked_by_outcome(self, names) -> bool:
        """Whether values torch would reject for the parameters ``names`` always show as a
        non-finite estimate, so that a prepared estimate may build the distribution without
        torch's per-call checks (``unvalidated``) and validate only when an estimate fails.

        True when each parameter is unconstrained or its constraint is ``real``. An unconstrained
        value is T(u) with T = transform_to(its constraint), inside the constraint for every
        finite u, so a rejected value comes from a NaN or infinite u or from T's underflow to
        the boundary (exp(u) = 0); a real one is rejected only when NaN. At each of these the
        family's scores are NaN."""
        real = constraints.real
        return all(self.unconstrained or self.family.arg_constraints.get(k) is real for k in names)

    def unvalidated(self, **params) -> D.Distribution:
        """``self(**params)`` without torch's checks of the parameter values (``validate_args=False``;
        only for callers that validate on failure, see ``checked_by_outcome``), marked
        ``checked_by_outcome`` so that samplers treat it as validated."""
        dist = self._build(params, validate_args=False)
        dist.checked_by_outcome = True
        return dist

    def declares_chain_rule(self, params: Mapping[str, torch.Tensor]) -> bool:
        """Whether ``pullback`` applies to these parameters: the family has a closed-form score
        with respect to each of them as passed (``register_score(..., as_given=...)``) and each
        map is elementwise and monotone."""
        from .model import scored_as_given

        given = scored_as_given(self.family)
        return all(k in given and self._derivative(k) is not False for k in params)

    def pullback(
        self,
        dist: D.Distribution,
        pairs: list[tuple[torch.Tensor, torch.Tensor]],
        params: Mapping[str, torch.Tensor],
        n: int,
    ) -> dict[str, torch.Tensor] | None:
        """Per-sample gradients {name: (n, *param.shape)} with respect to the user's parameters,
        from per-sample gradients with respect to ``dist``'s own parameter tensors (``pairs``:
        (tensor of dist, gradient (n, *batch))); None where the chain rule is not elementwise."""
        out = {}
        for name, p in params.items():
            natural = getattr(dist, name, None)
            g = next((g for t, g in pairs if t is natural), None)
            if g is None:
                return None
            derivative = self._derivative(name)
            if derivative is False:
                return None
            if derivative is not None:
                g = g * derivative(p, stopped(natural))
            if tuple(g.shape) != (n, *p.shape):  # p was broadcast against the batch: sum back
                pad = [1] * (g.dim() - 1 - p.dim())
                g = g.sum_to_size(n, *pad, *p.shape).view(n, *p.shape)
            out[name] = g
        return out

    def __repr__(self) -> str:
        extra = ", unconstrained=True" if self.unconstrained else ""
        fixed = "".join(f", {k}={v!r}" for k, v in self.fixed.items())
        return f"Family({self.family.__name__}{extra}{fixed})"
