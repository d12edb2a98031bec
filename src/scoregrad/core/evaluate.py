"""Calling the user's f: conversion to a tensor, shape and finiteness checks, evaluation count.

Precision: f's values are never rounded to the parameters' dtype. They come back in the wider of
f's own floating dtype and the parameters' (NumPy and Python numbers are float64, integers go
through float64), so f = 1e9 + x keeps its x with float32 parameters; moments are finished in
float64 (``core.stats``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Executor

import numpy as np
import torch

from ..errors import ExecutorError, FunctionOutputError
from .parallel import map_batches
from .shapes import stopped


class Evaluator:
    """Wraps f. ``evaluator(x)`` returns f(x) as a tensor of shape (n,) and counts evaluations.

    Samples handed to f are detached unless ``differentiable`` (pathwise estimators need the graph).
    f's output is detached unless ``keep_graph`` (the surrogate door keeps f's own dependence on
    other parameters, e.g. a decoder's weights in variational inference). ``item_shape`` allows f
    to return one value per sample *and item*, shape (n, *item_shape), e.g. per data point.
    ``dtype`` is the least precision of the values (the parameters' dtype); ``value_dtype`` is the
    dtype they actually came back in.

    With an ``executor``, f runs there in batches. Results from an executor carry no autograd
    graph, so where the graph is wanted (``keep_graph``) f is first probed on one sample in this
    process: if its output requires grad (f uses a parameter directly) an ``ExecutorError`` says so,
    rather than dropping that gradient. Differentiating f (``differentiable``) needs f in process.
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
        watch: dict[str, torch.Tensor] | None = None,
        defer_checks: bool = False,
    ):
        if not callable(f):
            raise FunctionOutputError(
                f"f must be callable (samples -> one value per sample), got {f!r}. Fix: pass a "
                "function, e.g. lambda x: (x - 3) ** 2."
            )
        self.f = f
        self.dtype = dtype
        self.device = device
        self.executor = executor
        self.batch_size = batch_size
        self.item_shape = tuple(item_shape)
        self.n_evals = 0
        self.value_dtype: torch.dtype | None = None
        self.watch = watch  # parameters f must not use directly (estimate_grad's)
        # set by a door that streams chunks or keeps per-sample rows: an estimator's
        # contributions must then be i.i.d. unit rows, not rows made to carry a weighted mean
        self.iid_rows = False
        # set by a door that streams an estimate in chunks: its whole n (the estimator's units),
        # of which each call of contributions sees one chunk (Auto sizes its pilot on it)
        self.planned: int | None = None
        self._probed = False
        # with defer_checks, finiteness is recorded as device totals (the sum of the values) and
        # checked once in finish() (one host sync per call instead of one per evaluation); only
        # for callers that keep no state from the values before finish() runs
        self._pending: list[tuple[torch.Tensor, torch.Tensor]] | None = [] if defer_checks else None

    @property
    def takes_log_prob(self) -> bool:
        """Whether f declares ``takes_log_prob``: it accepts log p(x) of the samples (detached,
        shape (n, *item_shape)) as a second argument, from an estimator that computes it anyway,
        instead of computing it again (an ELBO's f = log p(x, z) - log q(z)). Never through an
        executor (f runs elsewhere)."""
        return self.executor is None and getattr(self.f, "takes_log_prob", False) is True

    def __call__(
        self,
        x: torch.Tensor,
        differentiable: bool = False,
        keep_graph: bool = False,
        log_prob: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """f(x) checked, as (n, *item_shape) values; ``log_prob`` goes to an f that
        ``takes_log_prob``."""
        n = x.shape[0]
        if self.executor is not None and differentiable:
            raise ExecutorError(
                "this estimator differentiates f, so f must run in this process; an executor "
                "returns values without their autograd graph. Fix: drop executor=..., or use an "
                "estimator that only evaluates f (score_function, measure_valued, arm, disarm)."
            )
        if self.executor is not None:
            if keep_graph and not self._probed:
                self._probe(x)
            out = map_batches(self.f, x, self.executor, self.batch_size)
        else:
            version = x._version  # shared with x.detach(): an in-place change of f's input shows
            given = x if differentiable else x.detach()
            out = self.f(given) if log_prob is None else self.f(given, log_prob)
            if x._version != version:
                raise FunctionOutputError(
                    "f modified its input in place (e.g. x -= 1, x.clamp_(...), x[...] = ...); "
                    "the samples are also used for the scores, which would then be wrong. Fix: "
                    "work on a copy inside f (x = x.clone(), or out-of-place operations)."
                )
        if self.watch and not (differentiable or keep_graph):
            check_not_using(out, self.watch)
        values = as_values(
            out,
            n,
            dtype=self.dtype,
            device=self.device,
            keep_graph=differentiable or keep_graph,
            item_shape=self.item_shape,
            defer=self._pending,
        )
        if self.value_dtype is None:
            self.value_dtype = values.dtype
        elif values.dtype != self.value_dtype:
            self.value_dtype = torch.promote_types(self.value_dtype, values.dtype)
        self.n_evals += n
        return values

    def finite_totals(self) -> list[torch.Tensor]:
        """The deferred finiteness checks not yet made: the sum of each evaluation's values, a 0-d
        tensor on their device. A sum is finite only if every value is (a NaN or an infinity
        reaches it); a sum that overflows while every value is finite only sends the check to
        the per-sample test in ``finish``, so a finite total is proof and a non-finite one a
        reason to look."""
        return [total for _, total in self._pending or ()]

    def finish(self, known_finite: bool = False) -> None:
        """Raise the named error for non-finite values of f that were deferred (one host sync for
        all of them; none when the caller has already checked ``finite_totals``)."""
        pending, self._pending = self._pending, ([] if self._pending is not None else None)
        if not pending or known_finite:
            return
        if len(pending) == 1:
            ok = math.isfinite(pending[0][1])
        else:
            ok = bool(torch.isfinite(torch.stack([total for _, total in pending])).all())
        if not ok:
            for values, _ in pending:
                check_finite_values(values)

    def _probe(self, x: torch.Tensor) -> None:
        """Evaluate f on one sample here: refuse the executor if f's output needs grad."""
        self._probed = True
        try:
            out = self.f(x[:1].detach())
        except Exception:  # noqa: BLE001  f may only run remotely: then it holds no local graph
            return
        self.n_evals += 1
        if isinstance(out, torch.Tensor) and out.requires_grad:
            raise ExecutorError(
                "f's output requires grad (f uses a tensor that requires grad directly, e.g. a "
                "decoder's weights), but values that come back from an executor carry no "
                "gradient, so that part of the gradient would be lost. Fix: call expectation "
                "without executor= (f then runs in process and keeps its graph), or detach inside "
                "f if that gradient is not wanted."
            )


def check_not_using(out, params: dict[str, torch.Tensor], what: str = "f") -> None:
    """Refuse an output of f that depends on one of ``params`` directly: estimate_grad
    differentiates E[f] through the distribution only, so ∂f/∂θ would be silently missing."""
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        return
    names = list(params)
    reached = torch.autograd.grad(
        out.sum(), [params[k] for k in names], allow_unused=True, retain_graph=True
    )
    refuse_direct_use([k for k, r in zip(names, reached, strict=True) if r is not None], what)


def refuse_direct_use(used: list[str], what: str = "f") -> None:
    """The ``FunctionOutputError`` of ``check_not_using`` for the parameters ``used`` (none: no
    error); for a caller whose own backward pass already found which of them f's output reaches."""
    if used:
        raise FunctionOutputError(
            f"{what} uses the parameter(s) {', '.join(used)} directly (its output depends on them "
            "through its own graph), but estimate_grad differentiates E[f] only through the "
            "distribution, so that part of the gradient would be missing. Fix: use "
            "scoregrad.expectation, which keeps f's graph, or detach them inside f if f should "
            "treat them as constants."
        )


def as_values(
    out, n: int, *, dtype=None, device=None, keep_graph: bool = False, item_shape=(), defer=None
) -> torch.Tensor:
    """f's output as a float tensor of shape (n, *item_shape), or a FunctionOutputError.

    The result's dtype is the wider of f's own floating dtype and ``dtype`` (never narrower than
    what f computed); booleans become ``dtype``, other integers float64. With a list ``defer`` the
    finiteness check is appended to it as (values, their sum: a device total, see
    ``Evaluator.finite_totals``) instead of run here.
    """
    if out is None:
        raise FunctionOutputError(
            "f returned None. Fix: make f return one number per sample (did it miss a `return`?)."
        )
    if isinstance(out, torch.Tensor):
        v = out if keep_graph or not out.requires_grad else out.detach()
        if v.is_complex():
            raise _complex(v.dtype)
    else:
        arr = np.asarray(out) if not isinstance(out, np.ndarray) else out
        if np.iscomplexobj(arr):
            raise _complex(arr.dtype)
        try:
            v = torch.as_tensor(np.asarray(arr, dtype=np.float64))
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
    if v.dtype == torch.bool:
        v = v.to(dtype or torch.get_default_dtype())
    elif not v.is_floating_point():
        v = v.to(torch.float64)  # exact for integers below 2**53
    target = v.dtype if dtype is None or dtype == v.dtype else torch.promote_types(v.dtype, dtype)
    if target != v.dtype or (device is not None and v.device != device):
        v = v.to(dtype=target, device=device or v.device)
    if defer is not None:
        defer.append((v, stopped(v).sum()))
    else:
        check_finite_values(v)
    return v


def check_finite_values(v: torch.Tensor) -> None:
    """Raise a FunctionOutputError naming the samples (axis 0) where f's values are not finite."""
    if bool(torch.isfinite(v).all()):
        return
    n = v.shape[0]
    bad = ~torch.isfinite(v)
    idx = bad.reshape(n, -1).any(1).nonzero().flatten()
    shown = ", ".join(str(int(i)) for i in idx[:10]) + (" ..." if idx.numel() > 10 else "")
    raise FunctionOutputError(
        f"f returned non-finite values (NaN or inf) for {int(idx.numel())} of {n} samples, at "
        f"indices {shown}; first bad value {v[idx[0]].flatten()[:4].tolist()}. Fix f so it is "
        "finite on the whole support of the distribution (clip, or guard log/division), or "
        "change the distribution so those samples cannot occur."
    )


def _complex(dtype) -> FunctionOutputError:
    return FunctionOutputError(
        f"f returned complex values ({dtype}); an expectation of f needs real numbers. Fix: "
        "return the real part, the modulus (abs) or whichever real quantity is meant."
    )
