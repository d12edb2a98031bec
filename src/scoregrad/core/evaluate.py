"""Calling the user's f: conversion to a tensor, shape and finiteness checks, evaluation count."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor

import numpy as np
import torch

from ..errors import FunctionOutputError
from .parallel import map_batches


class Evaluator:
    """Wraps f. ``evaluator(x)`` returns f(x) as a tensor of shape (n,) and counts evaluations.

    Samples handed to f are detached unless ``differentiable`` (pathwise estimators need the graph).
    f's output is detached unless ``keep_graph`` (the surrogate door keeps f's own dependence on
    other parameters, e.g. a decoder's weights in variational inference). ``item_shape`` allows f
    to return one value per sample *and item*, shape (n, *item_shape), e.g. per data point.
    """

    def __init__(
        self,
        f: Callable,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | None = None,
        executor: Executor | None = None,
        batch_size: int | None = None,
        item_shape: tuple[int, ...] = (),
    ):
        if not callable(f):
            raise TypeError(f"f must be callable (samples -> one value per sample), got {f!r}.")
        self.f = f
        self.dtype = dtype
        self.device = device
        self.executor = executor
        self.batch_size = batch_size
        self.item_shape = tuple(item_shape)
        self.n_evals = 0

    def __call__(
        self, x: torch.Tensor, differentiable: bool = False, keep_graph: bool = False
    ) -> torch.Tensor:
        n = x.shape[0]
        if self.executor is not None and not differentiable:
            out = map_batches(self.f, x, self.executor, self.batch_size)
        else:
            out = self.f(x if differentiable else x.detach())
        values = as_values(
            out,
            n,
            dtype=self.dtype,
            device=self.device,
            keep_graph=differentiable or keep_graph,
            item_shape=self.item_shape,
        )
        self.n_evals += n
        return values


def as_values(
    out, n: int, *, dtype=None, device=None, keep_graph: bool = False, item_shape=()
) -> torch.Tensor:
    """f's output as a float tensor of shape (n, *item_shape), or a FunctionOutputError."""
    if isinstance(out, torch.Tensor):
        v = out if keep_graph else out.detach()
    else:
        try:
            v = torch.as_tensor(np.asarray(out, dtype=np.float64))
        except (TypeError, ValueError) as e:
            raise FunctionOutputError(
                f"f returned {type(out).__name__}, which is not numeric: {e}. f must return one "
                "number per sample, as a tensor, NumPy array or list."
            ) from e
    want = (n, *item_shape)
    if tuple(v.shape) != want:
        hint = " (drop the trailing axis, e.g. .squeeze(-1))" if v.numel() == n else ""
        per = "sample" if not item_shape else f"sample and item {tuple(item_shape)}"
        raise FunctionOutputError(
            f"f returned shape {tuple(v.shape)} for {n} samples; it must return one value per "
            f"{per}, shape {want}{hint}. The sample axis of x is the first one."
        )
    if not v.is_floating_point():
        v = v.to(dtype or torch.get_default_dtype())
    if dtype is not None or device is not None:
        v = v.to(dtype=dtype or v.dtype, device=device or v.device)
    if not bool(torch.isfinite(v).all()):
        bad = ~torch.isfinite(v)
        idx = bad.reshape(n, -1).any(1).nonzero().flatten()
        shown = ", ".join(str(int(i)) for i in idx[:10]) + (" ..." if idx.numel() > 10 else "")
        raise FunctionOutputError(
            f"f returned non-finite values (NaN or inf) for {int(idx.numel())} of {n} samples, at "
            f"indices {shown}; first bad value {v[idx[0]].flatten()[:4].tolist()}. Fix f so it is finite on the "
            "whole support of the distribution (clip, or guard log/division), or change the "
            "distribution so those samples cannot occur."
        )
    return v
