"""Prepared estimates: the generic work of a call site done once, then called with new values.

Training loops, sweeps and research toys call the doors thousands of times with the same f, the
same distribution family and shapes and the same estimator; only the parameter values change. A
prepared estimate checks the arguments, resolves the estimator, plans the chunks and learns
whether ``dist_fn`` broadcasts over a sample axis once, and each call then only draws, evaluates
f, scores and takes moments. ``estimate_grad`` and ``expectation`` are thin wrappers over these
objects (one implementation), so a prepared call and a one-shot call with the same seed give
bitwise-identical numbers.

When a call brings parameters (or a distribution) of another shape, dtype, device or
``requires_grad`` pattern, the preparation is redone, with every check, and ``rebuilds`` and
``last_rebuild`` say so; ``strict=True`` refuses instead.

>>> import torch, scoregrad as sg
>>> from torch.distributions import Normal
>>> mu = torch.zeros(3, requires_grad=True)
>>> grad_of = sg.prepare(lambda x: ((x - 1.0) ** 2).sum(-1), lambda mu: Normal(mu, 1.0),
...                      {"mu": mu}, n=10_000)
>>> est = grad_of({"mu": mu}, seed=0)                         # exact: 2 (mu - 1) = -2
>>> bool(((est.grad["mu"] + 2.0).abs() < 4.42 * est.stderr["mu"]).all())
True
>>> bool((grad_of({"mu": mu}, seed=0).grad["mu"] == est.grad["mu"]).all())   # same seed, same numbers
True
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field

import torch
import torch.distributions as D

from . import door_arguments as doors
from .core import arguments as args
from .core.chunks import chunk_sizes, unit_means
from .core.evaluate import Evaluator
from .core.model import build_distribution, unchecked
from .core.result import GradientEstimate, Layout, Moments, chunk_moments, gradient_estimate
from .core.seeding import seeded
from .core.stats import RunningMoments
from .errors import ArgumentError, SampleSizeError

__all__ = ["PreparedEstimate", "PreparedExpectation", "prepare", "prepare_expectation"]


class PreparedDistFn:
    """``dist_fn`` with what the first calls learned about it: whether it broadcasts over a
    leading sample axis (``expandable``; ``SampleModel.expand`` reads and records it).

    With ``checked_by_outcome`` (set by the plan, for a dist_fn that declares it and an estimator
    that ``scores_every_sample`` and keeps no state from the values) it builds distributions
    without torch's per-call checks of the parameter values; the estimate then validates them
    when it fails (``_estimate``)."""

    def __init__(self, dist_fn: Callable[..., D.Distribution]):
        self.dist_fn = dist_fn
        self.checked_by_outcome = False
        self.forget()

    def forget(self) -> None:
        """Drop what was learnt (new shapes: learn it again)."""
        self.expandable: bool | None = None
        self._chain_rule: bool | None = None

    def __call__(self, **params) -> D.Distribution:
        if self.checked_by_outcome:
            return self.dist_fn.unvalidated(**params)
        return self.dist_fn(**params)

    def checked(self, params) -> D.Distribution:
        """The distribution built with every check: a ParameterError for rejected values."""
        return build_distribution(self.dist_fn, params)

    @property
    def declares_chain_rule(self):
        """dist_fn's ``declares_chain_rule`` (a ``Family``'s), answered once per shapes."""
        if getattr(self.dist_fn, "declares_chain_rule", None) is None:
            return None
        return self._remembered_chain_rule

    def _remembered_chain_rule(self, params) -> bool:
        if self._chain_rule is None:
            self._chain_rule = bool(self.dist_fn.declares_chain_rule(params))
        return self._chain_rule

    def __getattr__(self, name):  # what dist_fn declares (a Family's pullback) shows through
        if name == "dist_fn":
            raise AttributeError(name)
        return getattr(self.dist_fn, name)


def _signature(params) -> tuple | None:
    """What a preparation depends on: names, shapes, dtypes, devices and requires_grad."""
    try:
        return tuple(
            (k, tuple(p.shape), p.dtype, p.device, p.requires_grad) for k, p in params.items()
        )
    except AttributeError:
        return None  # not a dict of tensors: the full checks will say what is wrong


def _difference(old: tuple | None, new: tuple | None) -> str:
    """A sentence saying how two signatures differ (for ``last_rebuild``)."""
    if old is None or new is None or [e[0] for e in old] != [e[0] for e in new]:
        return "the parameter names changed"
    what = ("shape", "dtype", "device", "requires_grad")
    for a, b in zip(old, new):
        for i, label in enumerate(what, 1):
            if a[i] != b[i]:
                return f"parameter {a[0]!r} changed {label} from {a[i]} to {b[i]}"
    return "the arguments changed"


def _refuse_change(kind: str, why: str):
    return ArgumentError(
        f"this prepared {kind} was built for other arguments: {why}. Fix: prepare another one "
        "for the new shapes (or pass strict=False to rebuild automatically)."
    )


def _elements_per_unit(estimator, dist, params) -> int:
    """Elements one unit of n holds in a chunk: its gradient rows (one per parameter element),
    bookkeeping, and one draw per evaluation of f (a measure-valued unit on a D-dimensional
    batch evaluates f at 1 + 2D substituted copies of its draw: O(D²) elements)."""
    draw = math.prod(dist.batch_shape) * math.prod(dist.event_shape)
    return sum(p.numel() for p in params.values()) + 8 + estimator.evals_per_unit(dist) * draw


@dataclass
class _Plan:
    """Everything ``estimate_grad`` decides before drawing: checked once per signature."""

    signature: tuple | None
    n: int
    estimator: object
    sizes: list[int]
    dtype: torch.dtype
    device: torch.device
    batch_size: int | None
    executor: Executor | None
    label: str | None = None  # the estimator's repr, when it cannot change (stateless)
    layout: Layout | None = None  # where each gradient sits in the flat moments
    # parameters shown to reach the distribution (by a non-zero gradient or a graph check): the
    # unreached-parameter check of an exactly-zero gradient is not repeated for them
    reached: set = field(default_factory=set)


class PreparedEstimate:
    """``estimate_grad(f, dist_fn, params, n, estimator, ...)`` prepared for repeated calls.

    Call it with a dict of parameter values (same names, shapes, dtype and device as at
    preparation) and optionally ``seed`` and ``context``; it returns the ``GradientEstimate`` that
    ``estimate_grad`` returns for the same arguments, bit for bit. Build it with
    ``scoregrad.prepare``.
    """

    def __init__(
        self,
        f: Callable,
        dist_fn: Callable[..., D.Distribution],
        params: Mapping[str, torch.Tensor],
        n: int,
        estimator=None,
        *,
        chunk_size: int | None = None,
        executor: Executor | None = None,
        batch_size: int | None = None,
        return_per_sample: bool = False,
        strict: bool = False,
        _seed=None,
    ):
        self.f = f
        self.dist_fn = PreparedDistFn(dist_fn)
        self.return_per_sample = return_per_sample
        self.strict = strict
        self.rebuilds = 0
        self.last_rebuild: str | None = None
        self._request = dict(
            n=n, estimator=estimator, chunk_size=chunk_size, batch_size=batch_size,
            executor=executor,
        )  # fmt: skip
        self._plan = self._prepare(params, _seed)

    @property
    def estimator(self):
        return self._plan.estimator

    @property
    def n(self) -> int:
        return self._plan.n

    def _prepare(self, params, seed=None) -> _Plan:
        r = self._request
        checked = doors.estimate_grad_arguments(
            self.dist_fn.dist_fn, params, r["n"], r["estimator"], seed, r["chunk_size"],
            r["batch_size"], r["executor"],
        )  # fmt: skip
        r["estimator"] = checked.estimator  # a rebuild keeps the same (possibly stateful) object
        ref = next(iter(params.values()))
        Evaluator(self.f)  # refuses an f that is not callable, before any sample is drawn
        per_sample_size = _elements_per_unit(checked.estimator, checked.dist, params)
        sizes = chunk_sizes(
            checked.n, per_sample_size, checked.estimator.granularity, checked.chunk_size,
            ref.device,
        )  # fmt: skip
        args.check_chunks(checked.estimator, sizes, checked.chunk_size)
        self.dist_fn.forget()  # learnt again for the new shapes
        declared = getattr(self.dist_fn.dist_fn, "checked_by_outcome", None)
        self.dist_fn.checked_by_outcome = (
            declared is not None
            and declared(list(params)) is True
            and checked.estimator.scores_every_sample is True  # invalid values show as NaN
            and not checked.estimator.stateful  # state updated from invalid values would outlive
        )  # the error
        return _Plan(
            _signature(params), checked.n, checked.estimator, sizes, ref.dtype, ref.device,
            checked.batch_size, r["executor"],
            None if checked.estimator.stateful else repr(checked.estimator), Layout(params),
        )  # fmt: skip

    def __call__(
        self,
        params: Mapping[str, torch.Tensor],
        *,
        seed: int | None = None,
        context: torch.Tensor | None = None,
    ) -> GradientEstimate:
        plan = self._plan
        signature = _signature(params)
        if signature != plan.signature:
            why = _difference(plan.signature, signature)
            if self.strict:
                raise _refuse_change("estimate", why)
            plan = self._plan = self._prepare(params)
            self.rebuilds += 1
            self.last_rebuild = why
        seed = args.check_seed(seed)
        args.check_context(context, plan.n)
        return _estimate(plan, self.f, self.dist_fn, params, seed, context, self.return_per_sample)


def _estimate(plan: _Plan, f, dist_fn, params, seed, context, keep) -> GradientEstimate:
    """One estimate along a plan: draw, evaluate f, score, take moments, check, finish."""
    estimator = plan.estimator
    evaluator = Evaluator(
        f, dtype=plan.dtype, device=plan.device, executor=plan.executor,
        batch_size=plan.batch_size, watch=params,
        defer_checks=not estimator.stateful,  # state updated from NaNs would outlive the error
    )  # fmt: skip
    evaluator.iid_rows = keep or len(plan.sizes) > 1
    if len(plan.sizes) > 1:
        evaluator.planned = plan.n
    start = time.perf_counter()
    try:
        if seed is None:  # (seeded(None) is a no-op: skip the context manager)
            mom = _moments(plan, estimator, evaluator, dist_fn, params, context, keep)
        else:
            with seeded(seed, plan.device):
                mom = _moments(plan, estimator, evaluator, dist_fn, params, context, keep)
        seconds = time.perf_counter() - start
        args.check_estimate(
            lambda: dist_fn.checked(params), params, lambda: mom.grad,
            estimator, evaluator, together=mom.mean[1:], reached=plan.reached,
        )  # fmt: skip
    except Exception:
        if dist_fn.checked_by_outcome:  # values torch would reject fail here, under their name
            dist_fn.checked(params)
        raise
    value_dtype = evaluator.value_dtype or plan.dtype
    if value_dtype != plan.dtype:
        value_dtype = torch.promote_types(value_dtype, plan.dtype)
    return gradient_estimate(
        mom, params, n=plan.n, n_evals=evaluator.n_evals, value_dtype=value_dtype,
        estimator=plan.label or repr(estimator), seconds=seconds, auto=estimator.report,
    )  # fmt: skip


def _moments(plan, estimator, evaluator, dist_fn, params, context, keep) -> Moments:
    if len(plan.sizes) == 1:  # one chunk: moments straight from shifted sums, no streaming merge
        c = estimator.contributions(evaluator, dist_fn, params, plan.n, context=context)
        return chunk_moments(c, plan.layout, keep)
    return _streamed(estimator, evaluator, dist_fn, params, plan.sizes, context, keep, plan.layout)


def _streamed(estimator, evaluator, dist_fn, params, sizes, context, keep, layout) -> Moments:
    """Chunk by chunk, merging unit moments in float64 (constant memory in n)."""
    value_stats, grad_stats = RunningMoments(), {k: RunningMoments() for k in params}
    kept: dict[str, list[torch.Tensor]] = {k: [] for k in params}
    offset = 0
    for size in sizes:
        ctx = context
        if context is not None and context.shape[0] == sum(sizes):  # per-sample context: slice it
            ctx = context[offset : offset + size]
        offset += size
        c = estimator.contributions(evaluator, dist_fn, params, size, context=ctx)
        value_stats.update(unit_means(c.values, c.block))
        for k, g in c.grads.items():
            u = unit_means(g, c.block)
            grad_stats[k].update(u)
            if keep:
                kept[k].append(u.detach())
    stats = [value_stats] + [grad_stats[k] for k in layout.names]
    return Moments(
        torch.cat([s.mean.reshape(-1) for s in stats]),
        torch.cat([s.stderr().reshape(-1) for s in stats]),
        layout,
        value_stats.count,
        {k: torch.cat(v) for k, v in kept.items()} if keep else None,
    )


def _dist_signature(dist) -> tuple | None:
    """What checking a distribution for ``expectation`` depends on: its class, shapes, dtype and
    device, and the shapes and requires_grad of the tensors it holds (through wrappers and
    transforms: a support bound that requires grad changes what the estimator supports)."""
    if not isinstance(dist, D.Distribution):
        return None
    held = args.held_tensors(dist)
    return (
        type(dist),
        tuple(dist.batch_shape),
        tuple(dist.event_shape),
        tuple((tuple(t.shape), t.dtype, t.device, t.requires_grad) for t in held),
    )


class PreparedExpectation:
    """``expectation(f, dist, n, estimator, ...)`` prepared for a training loop.

    Call it with the distribution of this step (built from the current parameters) and optionally
    ``seed`` and ``context``; it returns the same surrogate as ``expectation``, bit for bit. The
    checks of the distribution run again only when its class, shapes, dtype, device or
    ``requires_grad`` pattern change. Build it with ``scoregrad.prepare_expectation``.
    """

    def __init__(
        self,
        f: Callable,
        n: int,
        estimator=None,
        *,
        item_shape: tuple[int, ...] = (),
        executor: Executor | None = None,
        strict: bool = False,
        _first=None,
    ):
        if _first is not None:  # the one-shot door: its checks in their order, the dist first
            dist, seed = _first
            checked = doors.expectation_arguments(dist, n, estimator, seed, executor)
        else:
            checked = doors.expectation_arguments(
                None, n, estimator, None, executor, with_dist=False
            )
        self.f = f
        self.n = checked.n
        self.estimator = checked.estimator
        self.item_shape = tuple(item_shape)
        self.executor = executor
        self.strict = strict
        self.rebuilds = 0
        self.last_rebuild: str | None = None
        self._signature = None
        self._ref = None
        if _first is not None:
            self._check(_first[0], _dist_signature(_first[0]), already=True)
        if f is not None or _first is not None:  # (None: f comes with each call)
            Evaluator(f)  # refuses an f that is not callable, before any sample is drawn

    def _check(self, dist, signature, already=False) -> None:
        if not already:
            args.check_distribution(dist)
            doors.check_estimator(self.estimator, "expectation", dist=dist, executor=self.executor)
        item_shape = self.item_shape
        if item_shape and tuple(dist.batch_shape[: len(item_shape)]) != item_shape:
            raise SampleSizeError(
                f"item_shape {item_shape} must be the leading batch dimensions of the "
                f"distribution, whose batch shape is {tuple(dist.batch_shape)}."
            )
        if self._signature is not None:
            self.rebuilds += 1
            self.last_rebuild = "the distribution's class, shapes or requires_grad changed"
        self._ref = args.distribution_reference(dist)
        self._signature = signature

    def __call__(
        self,
        dist: D.Distribution,
        *,
        seed: int | None = None,
        context: torch.Tensor | None = None,
        f: Callable | None = None,
    ) -> torch.Tensor:
        """The surrogate for ``dist``; ``f`` replaces the prepared f for this call (a training loop
        whose f closes over the step's minibatch)."""
        signature = _dist_signature(dist)
        if signature is None or signature != self._signature:
            if self.strict and self._signature is not None:
                raise _refuse_change(
                    "expectation", "the distribution's class, shapes or requires_grad changed"
                )
            self._check(dist, signature)
        seed = args.check_seed(seed)
        ref = self._ref
        evaluator = Evaluator(
            self.f if f is None else f, executor=self.executor, item_shape=self.item_shape,
            dtype=None if ref is None else ref.dtype, device=None if ref is None else ref.device,
            defer_checks=not self.estimator.stateful,
        )  # fmt: skip
        # estimators read lazily computed tensors (a Bernoulli's probs, a Categorical's logits):
        # on a copy, so the caller's object caches none whose graph their backward pass frees
        # (reusing the object for another call and backward pass would then fail)
        private = unchecked(dist)
        with seeded(seed, None if ref is None else ref.device):
            _, surrogate = self.estimator.surrogate(evaluator, private, self.n, context=context)
        evaluator.finish()
        return surrogate


def prepare(f, dist_fn, params, n, estimator=None, **options) -> PreparedEstimate:
    """``estimate_grad`` for one call site: every check, the estimator and the chunk plan settled
    once for these parameter shapes; call the result with new parameter values (and ``seed=``,
    ``context=``). Arguments and keyword options as for ``estimate_grad`` (``chunk_size``,
    ``executor``, ``batch_size``, ``return_per_sample``), plus ``strict``: refuse parameters of
    another shape instead of preparing again.

    >>> import torch, scoregrad as sg
    >>> from torch.distributions import Bernoulli
    >>> theta = torch.zeros(3, requires_grad=True)
    >>> step = sg.prepare(lambda b: b.sum(-1), lambda theta: Bernoulli(logits=theta),
    ...                   {"theta": theta}, n=8, estimator=sg.DisARM())
    >>> step({"theta": theta}, seed=0).grad["theta"].shape
    torch.Size([3])
    """
    return PreparedEstimate(f, dist_fn, params, n, estimator, **options)


def prepare_expectation(f, n, estimator=None, **options) -> PreparedExpectation:
    """``expectation`` for a training loop: call the result with each step's distribution (and
    ``seed=``, ``context=``) to get the surrogate; checks rerun only when the distribution's
    class, shapes or dtype change. Options as for ``expectation`` (``item_shape``, ``executor``),
    plus ``strict``.

    >>> import torch, scoregrad as sg
    >>> from torch.distributions import Bernoulli
    >>> theta = torch.zeros(3, requires_grad=True)
    >>> loss_of = sg.prepare_expectation(lambda b: b.sum(-1), n=8, estimator=sg.DisARM())
    >>> loss_of(Bernoulli(logits=theta), seed=0).backward()
    >>> theta.grad.shape
    torch.Size([3])
    """
    return PreparedExpectation(f, n, estimator, **options)
