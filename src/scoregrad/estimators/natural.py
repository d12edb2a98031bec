"""Natural parameters: per-sample gradients with respect to a distribution's own parameters.

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

from .applicability import unwrap


class NaturalParams:
    """Natural parameters t = getter(dist) of a prepared ``SampleModel``, with per-sample pullback.

    ``value`` is a tuple of tensors shaped (n, *t.shape) (broadcast over the sample axis), read with
    autograd enabled *before* any sampling, so lazily computed attributes (``probs``/``logits``)
    keep their graph. ``pullback(gs)`` maps per-sample gradients with respect to t (same shapes)
    to per-sample gradients with respect to the user's parameters, {name: (n, *param.shape)}.
    """

    def __init__(
        self,
        model,
        getter: Callable[[D.Distribution], tuple[torch.Tensor, ...]],
        estimator: str | None = None,
    ):
        """``estimator``, the caller's name, when its gradient goes through logits or scores
        (blind to an outcome entering the support: ``SampleModel.refuse_moving_boundary``);
        None for one that evaluates f at every outcome (measure-valued)."""
        self.model = model
        if estimator is not None:
            model.refuse_moving_boundary(estimator)
        n = model.n
        if model.expanded:
            with torch.enable_grad():
                self.tensors = tuple(getter(unwrap(model.dist)))
            self.value = tuple(t.detach() for t in self.tensors)
            self.needed = tuple(t.requires_grad for t in self.tensors)
        else:
            self.tensors = tuple(getter(unwrap(model.dist)))
            self.value = tuple(t.detach().unsqueeze(0).expand(n, *t.shape) for t in self.tensors)
            self.needed = tuple(True for _ in self.tensors)
            probe = [(t, v) for t, v in zip(self.tensors, self.value, strict=True)]
            if model.pullback(probe) is not None:  # dist_fn declares the chain rule (Family)
                self._vjp = None
                return
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
        if self._vjp is None:
            return model.pullback(list(zip(self.tensors, gs, strict=True)))
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


def per_item(diff: torch.Tensor, like_dims: int) -> torch.Tensor:
    """Broadcast f-values (n, *items) against a per-element tensor with ``like_dims`` dims
    (n, *items, *rest) by appending singleton axes."""
    return diff.reshape(*diff.shape, *([1] * (like_dims - diff.dim())))
