"""The argument checks of the two doors that need the estimators: which estimator runs (None is
``ScoreFunction()``, ``"auto"`` is ``Auto()``), whether it can run through the door it was given,
and every check ``estimate_grad`` and ``expectation`` make before drawing a sample, in one call.
The estimator-free checks they call live in ``core.arguments``; these sit above the estimators,
beside the doors (``prepared.py``), so the core never imports an estimator.
"""

from __future__ import annotations

from typing import NamedTuple

import torch.distributions as D

from .core.arguments import (
    build_checked,
    check_distribution,
    check_params,
    check_seed,
    instance_hint,
    positive_size,
    require_instance,
    sample_size,
)
from .errors import EstimatorArgumentError, EstimatorNotApplicable, ExecutorError
from .estimators.auto import Auto
from .estimators.base import Estimator
from .estimators.registry import close_names, estimator_class, registered
from .estimators.score_function import ScoreFunction

__all__ = [
    "DoorArguments",
    "estimate_grad_arguments",
    "expectation_arguments",
    "resolve_estimator",
    "check_estimator",
]


class DoorArguments(NamedTuple):
    """The checked arguments of a door (sizes as ints, the estimator resolved)."""

    n: int
    seed: int | None
    estimator: object
    dist: D.Distribution
    chunk_size: int | None = None
    batch_size: int | None = None


def estimate_grad_arguments(
    dist_fn, params, n, estimator, seed, chunk_size, batch_size, executor
) -> DoorArguments:
    """Every check ``estimate_grad`` makes before drawing a sample, in one call."""
    check_params(params)
    n = sample_size(n)
    seed = check_seed(seed)
    chunk_size = positive_size(chunk_size, "chunk_size")
    batch_size = positive_size(batch_size, "batch_size")
    dist = build_checked(dist_fn, params)
    estimator = check_estimator(estimator, "estimate_grad", dist=dist, executor=executor)
    estimator.check(n)
    return DoorArguments(n, seed, estimator, dist, chunk_size, batch_size)


def expectation_arguments(dist, n, estimator, seed, executor, with_dist=True) -> DoorArguments:
    """Every check ``expectation`` makes before drawing a sample, in one call (without the
    distribution's when ``with_dist`` is false: a prepared expectation checks it at its call)."""
    if with_dist:
        check_distribution(dist)
    n = sample_size(n)
    seed = check_seed(seed)
    estimator = check_estimator(
        estimator, "expectation", dist=dist if with_dist else None, executor=executor
    )
    return DoorArguments(n, seed, estimator, dist)


def resolve_estimator(estimator):
    """The estimator to run: ``ScoreFunction()`` for None, ``Auto()`` for ``"auto"``, the instance
    itself, or a clear error for another name or a class (naming the class to instantiate)."""
    if estimator is None:
        return ScoreFunction()
    if isinstance(estimator, Estimator):
        return estimator
    if isinstance(estimator, str) and estimator.lower() == "auto":
        return Auto()
    if isinstance(estimator, str):
        cls = estimator_class(estimator)
        if cls is not None:
            fix = f"estimator={instance_hint(cls)}"
        else:
            close = close_names(estimator)
            fix = (
                f"did you mean {' or '.join(close)}? Registered: {', '.join(registered())}"
                if close
                else f"registered estimators: {', '.join(registered())}"
            )
        raise EstimatorArgumentError(
            f'estimator={estimator!r} is a name; the doors take an estimator object (or "auto" '
            f"to let a pilot choose). Fix: {fix}."
        )
    return require_instance(estimator, Estimator, "estimator")


def check_estimator(estimator, door: str, *, dist=None, executor=None):
    """Resolve ``estimator`` and refuse what ``door`` cannot run correctly: a door it does not
    declare, a distribution it does not support, an executor when it must differentiate f."""
    estimator = resolve_estimator(estimator)
    if door not in estimator.doors:
        other = ", ".join(sorted(estimator.doors))
        raise EstimatorNotApplicable(
            f"{estimator!r} cannot run through scoregrad.{door}; it declares the door(s) {other}. "
            f"Fix: call scoregrad.{sorted(estimator.doors)[0]}, or configure it for {door} (e.g. "
            "a fixed control-variate coefficient)."
        )
    if executor is not None and estimator.needs_differentiable_f:
        raise ExecutorError(
            f"{estimator!r} differentiates f, which must then run in this process with its "
            "autograd graph; an executor returns plain values. Fix: drop executor=..., or use an "
            "estimator that only evaluates f (score_function, measure_valued, arm, disarm)."
        )
    if dist is not None:
        estimator.require(dist)
    return estimator
