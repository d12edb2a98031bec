"""Row broadcasting: per-sample (or per-sample-and-item) numbers against per-element tensors.

Every estimator multiplies a learning signal with one value per sample, shape (n, *items), by a
tensor with more trailing axes, shape (n, *items, *rest) (a score per parameter element, a
gradient per latent). ``broadcast_rows`` appends the singleton axes that make them broadcast.

>>> import torch
>>> w, s = torch.tensor([1.0, 2.0]), torch.ones(2, 3)
>>> (broadcast_rows(w, s) * s).tolist()
[[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]
>>> broadcast_rows(torch.ones(4, 5), torch.ones(4, 5, 2, 3)).shape   # (n, items) vs (n, items, ...)
torch.Size([4, 5, 1, 1])
"""

from __future__ import annotations

import torch

__all__ = ["broadcast_rows", "stopped"]


def broadcast_rows(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """v of shape (n, *items) with singleton axes appended to broadcast against ``like``
    (n, *items, *rest); unchanged when it already has ``like``'s number of dimensions."""
    extra = like.dim() - v.dim()
    return v.reshape(*v.shape, *([1] * extra)) if extra > 0 else v


def stopped(t: torch.Tensor) -> torch.Tensor:
    """t without its graph (a constant: a score's cotangent, a value for statistics); no
    operation when it has none (``detach`` costs a Python call and a new tensor per use)."""
    return t.detach() if t.requires_grad else t
