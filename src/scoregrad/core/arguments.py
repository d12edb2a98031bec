"""Argument checks shared by both doors (``estimate_grad``, ``expectation``) and ``score``.

Each check raises a ``ScoregradError`` subclass whose message names the problem and the fix, before
any evaluation of f. Both doors call these and nothing else, so a bad argument gets the same answer
whichever door it comes through.

>>> import numpy as np
>>> sample_size(np.int64(100))
100
>>> try:
...     sample_size(True)
... except SampleSizeError as e:
...     print(str(e)[:60])
n must be a positive integer number of samples, got True (a
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Integral

import torch
import torch.distributions as D

from ..errors import (
    ArgumentError,
    BatchSizeError,
    DistributionError,
    EstimatorArgumentError,
    ParameterError,
    SampleSizeError,
    SeedError,
    SupportError,
)
from .shapes import stopped
from .support import check_in_support

__all__ = [
    "instance_hint",
    "check_plan",
    "check_estimate",
    "check_params",
    "build_checked",
    "as_points",
    "sample_size",
    "check_seed",
    "positive_size",
    "check_chunks",
    "require_instance",
    "check_distribution",
    "distribution_reference",
    "check_in_support",
    "warn_unreached",
    "check_context",
    "check_finite_estimate",
    "UnreachedParameterWarning",
    "held_tensors",
]


def check_plan(estimator, sizes: list[int], chunk_size: int | None, context, n: int) -> None:
    """The chunk plan and the context fit the estimator (``check_chunks``, ``check_context``)."""
    check_chunks(estimator, sizes, chunk_size)
    check_context(context, n)


def _all_finite_nonzero(tensors, totals=()) -> bool:
    """Whether every element of ``tensors`` is finite and non-zero and every one of ``totals`` (the
    sums of f's values, ``Evaluator.finite_totals``) is finite: one host sync for all of them."""
    tensors = [stopped(t).reshape(-1) if t.dim() != 1 else stopped(t) for t in tensors]
    on_cpu = all(t.device.type == "cpu" for t in tensors)
    if on_cpu and sum(t.numel() for t in tensors) <= 256:  # a few numbers: Python beats kernels
        if not all(math.isfinite(x) and x != 0 for t in tensors for x in t.tolist()):
            return False
        return all(math.isfinite(t) for t in totals)
    flat = torch.cat(tensors) if len(tensors) > 1 else tensors[0]
    ok = (torch.isfinite(flat) & (flat != 0)).all()
    if totals:
        ok = torch.stack([ok, torch.isfinite(torch.stack(list(totals))).all()]).all()
    return bool(ok)


def check_estimate(
    dist, params, grads, estimator, evaluator=None, together=None, reached=None
) -> None:
    """After the estimate: refuse non-finite values of f (checks the ``evaluator`` deferred) and a
    non-finite gradient, warn about unreached parameters. One host sync in the common case (every
    component finite and non-zero). ``dist`` is the distribution and ``grads`` the gradients, or
    functions that build them (only needed when a gradient is not finite or exactly zero);
    ``together``, when given, holds every gradient element in one tensor (one check for all);
    ``reached`` is the caller's set of parameters already shown to reach the distribution (see
    ``warn_unreached``)."""
    totals = evaluator.finite_totals() if evaluator is not None else ()
    checked = (
        [together] if together is not None else (grads() if callable(grads) else grads).values()
    )
    if _all_finite_nonzero(checked, totals):
        if evaluator is not None:
            evaluator.finish(known_finite=True)
        return
    if evaluator is not None:
        evaluator.finish()
    grads = grads() if callable(grads) else grads
    check_finite_estimate(grads, params, estimator)
    warn_unreached(dist, params, grads, reached)


#: dtypes whose rounding makes Monte Carlo moments and scores unreliable
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _integer(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _low_precision(dtype, what: str) -> ParameterError:
    return ParameterError(
        f"{what} has dtype {dtype}; half-precision rounding (3 significant digits) corrupts "
        "per-sample scores and the moments behind the standard errors. Fix: use float32 or "
        "float64 parameters (e.g. .float()), and cast inside f if it must run in half precision."
    )


def check_params(params: Mapping[str, torch.Tensor]) -> None:
    """Each parameter must be a float32/float64 tensor that requires grad, all on one device with
    one dtype."""
    if not isinstance(params, Mapping) or not params:
        raise ParameterError(
            "params must be a non-empty dict of name -> tensor, e.g. {'mu': torch.tensor(0.0, "
            "requires_grad=True)}."
        )
    for k, p in params.items():
        if not isinstance(p, torch.Tensor):
            raise ParameterError(
                f"parameter {k!r} is a {type(p).__name__}, not a torch.Tensor. Fix: "
                f"torch.tensor({p!r}, requires_grad=True)."
            )
        if not p.is_floating_point():
            raise ParameterError(
                f"parameter {k!r} has dtype {p.dtype}; gradients need a floating tensor. Fix: "
                f"create it with dtype=torch.float32 or float64 (e.g. {k}.float())."
            )
        if p.dtype in _LOW_PRECISION:
            raise _low_precision(p.dtype, f"parameter {k!r}")
        if not p.requires_grad:
            raise ParameterError(
                f"parameter {k!r} does not require grad. Fix: create it with requires_grad=True "
                f"or call {k}.requires_grad_()."
            )
    kinds = {(p.dtype, p.device) for p in params.values()}
    if len(kinds) > 1:
        listed = ", ".join(f"{k}: {p.dtype} on {p.device}" for k, p in params.items())
        ref_name, ref = next(iter(params.items()))
        raise ParameterError(
            f"the parameters mix dtypes or devices ({listed}); the per-sample scores and their "
            f"moments need one of each. Fix: move them together, e.g. "
            f"p.to(dtype={ref.dtype}, device='{ref.device}') like {ref_name!r}."
        )


def build_checked(dist_fn, params: Mapping[str, torch.Tensor]) -> D.Distribution:
    """dist_fn(**params) for a door: a clear error when dist_fn is not callable or does not take
    the parameters' names (and ``build_distribution``'s for invalid values or a non-Distribution)."""
    from .model import build_distribution

    if not callable(dist_fn):
        raise ParameterError(
            f"dist_fn must be a function from the parameters to a Distribution, got "
            f"{type(dist_fn).__name__}. Fix: e.g. dist_fn=lambda mu: Normal(mu, 1.0); for a ready "
            "distribution use scoregrad.expectation."
        )
    try:
        return build_distribution(dist_fn, params)
    except TypeError as e:
        names = ", ".join(params)
        raise ParameterError(
            f"dist_fn(**params) failed with the parameter names {names}: {e}. Fix: name dist_fn's "
            f"arguments like the keys of params (e.g. lambda {names}: ...)."
        ) from e


def as_points(
    x, params: Mapping[str, torch.Tensor], point_shape: tuple | None = None
) -> torch.Tensor:
    """Points to score as a tensor with a leading sample axis (lists and arrays are converted to
    the parameters' dtype and device); with ``point_shape`` (the distribution's batch and event
    shape) each point must broadcast to it."""
    ref = next(iter(params.values()))
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x, dtype=ref.dtype, device=ref.device)
        except (TypeError, ValueError, RuntimeError) as e:
            raise SupportError(
                f"x must be a tensor of points with the sample axis first, got "
                f"{type(x).__name__}: {e}."
            ) from e
    if x.dim() == 0:
        raise SupportError(
            "x is a single number; score takes points with a leading sample axis. Fix: pass "
            "x.reshape(1) (or a 1-element list)."
        )
    if point_shape is not None:
        try:
            fits = torch.broadcast_shapes(tuple(x.shape[1:]), point_shape) == point_shape
        except RuntimeError:
            fits = False
        if not fits:
            raise SupportError(
                f"x has shape {tuple(x.shape)}: each point of this distribution has shape "
                f"{point_shape} (its batch and event shape), so x must be (m, "
                f"{', '.join(map(str, point_shape))}) with the sample axis first."
                if point_shape
                else f"x has shape {tuple(x.shape)}: the points of this distribution are numbers, "
                "so x must be (m,) with the sample axis first."
            )
    return x


def sample_size(n, what: str = "n") -> int:
    """n as an int: a positive Python or NumPy integer (not a bool, float or string)."""
    if not _integer(n) or int(n) < 1:
        kind = " (a bool)" if isinstance(n, bool) else ""
        raise SampleSizeError(
            f"{what} must be a positive integer number of samples, got {n!r}{kind}. Fix: pass "
            f"an int such as {what}=1000."
        )
    return int(n)


def check_seed(seed) -> int | None:
    """None, or the seed as an int (Python or NumPy integer in torch's range)."""
    if seed is None:
        return None
    if not _integer(seed):
        raise SeedError(
            f"seed must be an integer (or None), got {seed!r} of type {type(seed).__name__}. "
            "Fix: pass e.g. seed=0; to derive one from text use zlib.crc32(text.encode())."
        )
    seed = int(seed)
    if not -(2**63) <= seed < 2**64:
        raise SeedError(f"seed {seed} is outside torch's range [-2**63, 2**64). Fix: reduce it.")
    return seed


def positive_size(value, what: str) -> int | None:
    """None, or a positive integer size (``chunk_size``, ``batch_size``)."""
    if value is None:
        return None
    if not _integer(value) or int(value) < 1:
        raise BatchSizeError(
            f"{what} must be a positive integer number of samples (or None for the default), "
            f"got {value!r}. Fix: e.g. {what}=4096, or leave it out."
        )
    return int(value)


def check_chunks(estimator, sizes: list[int], chunk_size: int | None) -> None:
    """Every chunk must be a size the estimator can run (whole groups, enough units for a
    leave-one-out baseline); otherwise a BatchSizeError names the smallest chunk_size that works."""
    if chunk_size is None:
        return
    for size in sorted(set(sizes)):
        try:
            if size < estimator.granularity:
                raise SampleSizeError(f"it must hold whole groups of {estimator.granularity}")
            estimator.check(size)
        except SampleSizeError as e:
            raise BatchSizeError(
                f"chunk_size={chunk_size} gives chunks of {size} samples, which {estimator!r} "
                f"cannot run ({str(e).split(' Fix:')[0].rstrip('.')}). Fix: raise chunk_size, "
                "or leave it out for the default."
            ) from e


def instance_hint(cls: type) -> str:
    mod = cls.__module__.replace("scoregrad.", "sg.", 1)
    if mod.startswith("sg.estimators"):
        mod = "sg"
    return f"{mod}.{cls.__name__}()"


def require_instance(value, base: type, what: str, default=None):
    """``value`` if it is an instance of ``base``; ``default`` for None; a clear error for a class
    (not instantiated), a name, or anything else."""
    if value is None:
        return default
    if isinstance(value, base):
        return value
    if isinstance(value, type):
        raise EstimatorArgumentError(
            f"{what}={value.__name__} is a class, not an instance. Fix: call it, "
            f"{what}={instance_hint(value)}."
        )
    if isinstance(value, str):
        known = ", ".join(instance_hint(c) for c in _subclasses(base))
        raise EstimatorArgumentError(
            f"{what}={value!r} is a name; scoregrad takes objects here. Fix: pass an instance, "
            f"one of {known}."
        )
    raise EstimatorArgumentError(
        f"{what} must be an instance of {base.__name__}, got {type(value).__name__} ({value!r})."
    )


def _subclasses(base: type) -> list[type]:
    out, todo = [], list(base.__subclasses__())
    while todo:
        c = todo.pop(0)
        if not c.__name__.startswith("_") and c.__module__.startswith("scoregrad."):
            out.append(c)
        todo += c.__subclasses__()
    return out


def check_context(context, n: int) -> None:
    """A context tensor for ``estimate_grad`` has one row per sample (n) or one shared row."""
    if isinstance(context, torch.Tensor) and context.dim() >= 1 and context.shape[0] not in (1, n):
        raise ArgumentError(
            f"context has {context.shape[0]} rows for n={n} samples; a learned baseline needs one "
            f"row per sample (shape ({n}, ...)) or one row shared by all (shape (1, ...)). Fix: "
            "pass the context of each sample, in the order of the samples."
        )


def check_finite_estimate(grads, params, estimator) -> None:
    """A gradient estimate that is not finite is no estimate: say why instead of returning NaN."""
    bad = [k for k, g in grads.items() if not bool(torch.isfinite(g).all())]
    if bad:
        raise ParameterError(
            f"the gradient estimate of {', '.join(repr(k) for k in bad)} is not finite with "
            f"{estimator!r}: the per-sample terms overflowed or are undefined, as for a parameter on "
            "the boundary of its domain (probs 0 or 1, a scale of 0), where the score ∇θ log p does "
            "not exist. Fix: keep parameters inside their domain, e.g. Bernoulli(logits=theta) or "
            "Normal(mu, log_sigma.exp()), and check f for overflow."
        )


class UnreachedParameterWarning(UserWarning):
    """A parameter got a gradient of exactly zero because it never reaches the distribution."""


def held_tensors(obj, seen=None) -> list[torch.Tensor]:
    """The tensors a distribution holds, through wrapped distributions and transforms."""
    seen = set() if seen is None else seen
    if id(obj) in seen or not hasattr(obj, "__dict__"):
        return []
    seen.add(id(obj))
    out = []
    for v in vars(obj).values():
        for item in v if isinstance(v, list | tuple) else (v,):
            if isinstance(item, torch.Tensor):
                out.append(item)
            elif isinstance(item, D.Distribution | D.Transform):
                out += held_tensors(item, seen)
    return out


def warn_unreached(dist, params: Mapping[str, torch.Tensor], grads, reached=None) -> None:
    """Warn about parameters whose estimated gradient is exactly zero because no tensor of
    ``dist`` (a Distribution, or a function that builds it) depends on them (dist_fn used
    ``float(p)``, ``p.item()``, ``p.detach()`` or ``torch.tensor(p)``): the zero is then a broken
    graph, not a measurement. Free unless some gradient is exactly zero. ``reached``, a set kept by
    the caller across calls of one dist_fn (a prepared estimate), names parameters already shown
    to reach it: a zero of theirs (two equal samples under a leave-one-out baseline) is a
    measurement, and the graph is not checked again; names shown here are added to it."""
    import warnings

    reached = set() if reached is None else reached
    zero, seen = [], []
    for k, g in grads.items():
        if k in reached:
            continue
        (zero if not bool((g != 0).any()) else seen).append(k)
    reached.update(seen)
    if not zero:
        return
    dist = dist() if callable(dist) else dist
    held = [t for t in held_tensors(dist, set()) if t.requires_grad]
    with torch.enable_grad():
        graph = (
            torch.autograd.grad(
                [t.sum() for t in held], [params[k] for k in zero], allow_unused=True,
                retain_graph=True,
            )
            if held
            else [None] * len(zero)
        )  # fmt: skip
    for k, r in zip(zero, graph, strict=True):
        if r is not None:
            reached.add(k)
        else:
            warnings.warn(
                f"parameter {k!r} got a gradient of exactly 0 because the distribution does not "
                f"depend on it: dist_fn may break the graph (float({k}), {k}.item(), "
                f"{k}.detach(), torch.tensor({k})). Fix: use {k} in torch operations inside "
                "dist_fn; if it really does not enter the distribution, drop it from params.",
                UnreachedParameterWarning,
                stacklevel=3,
            )


def check_distribution(dist) -> D.Distribution:
    """``dist`` must be a Distribution with float32/float64 parameters."""
    if not isinstance(dist, D.Distribution):
        raise DistributionError(
            f"expectation needs a torch.distributions.Distribution, got {type(dist).__name__}. "
            "Fix: pass e.g. Normal(mu, sigma); for a parameter dict and a builder, use "
            "scoregrad.estimate_grad."
        )
    ref = distribution_reference(dist)
    if ref is not None and ref.dtype in _LOW_PRECISION:
        raise _low_precision(ref.dtype, f"the parameter of the {type(dist).__name__}")
    return dist


def distribution_reference(dist: D.Distribution) -> torch.Tensor | None:
    """A floating tensor held by ``dist`` (or its base distribution, through any wrappers): its
    device and dtype are the samples'. Works for any Distribution, with or without ``.mean``."""
    from .model import _parameter_of

    return _parameter_of(dist)
