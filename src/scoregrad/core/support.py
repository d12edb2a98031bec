"""Whether points lie in a distribution's support (the score is undefined outside it)."""

from __future__ import annotations

import torch
import torch.distributions as D

from ..errors import SupportError

__all__ = ["check_in_support"]


def check_in_support(dist: D.Distribution, x: torch.Tensor, what: str = "x") -> None:
    """Raise ``SupportError`` naming the first points of ``x`` (sample axis first) outside
    ``dist.support``."""
    try:
        support = dist.support
    except NotImplementedError:
        return  # a custom distribution that declares no support
    if support is None:
        return
    try:
        inside = support.check(x)
    except (RuntimeError, TypeError, NotImplementedError):
        return
    inside = torch.as_tensor(inside)
    if bool(inside.all()):
        return
    bad = (~inside).reshape(x.shape[0], -1).any(1).nonzero().flatten()
    first = int(bad[0])
    shown = ", ".join(str(int(i)) for i in bad[:10]) + (" ..." if bad.numel() > 10 else "")
    raise SupportError(
        f"{int(bad.numel())} of {x.shape[0]} points of {what} lie outside the support of "
        f"{type(dist).__name__} ({support}), at indices {shown}; the first is "
        f"{x[first].flatten()[:4].tolist()}. Their score ∇θ log p is undefined. Fix: pass points "
        "the distribution can produce (e.g. integers ≥ 0 for a Poisson, 0 or 1 for a Bernoulli)."
    )
