"""The two doors into the estimators: ``estimate_grad`` (with standard errors) and ``expectation``
(a differentiable surrogate for training loops), plus ``score`` (per-sample score vectors).

    ∇θ E_{p(x;θ)}[f(x)] ≈ (1/m) Σ_u ĝ_u,   stderr = sd(ĝ_u) / √m

where ĝ_u are the independent units an estimator produces (single samples, antithetic pairs or
quasi-random replicates). n larger than memory is processed in chunks whose unit statistics are
merged with a numerically stable running mean and variance, so memory stays constant in n.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field

import torch
import torch.distributions as D

from .core import arguments as args
from .core.arguments import check_params
from .core.chunks import chunk_sizes, unit_means
from .core.evaluate import Evaluator
from .core.model import SampleModel
from .core.seeding import seeded
from .core.stats import RunningMoments, shifted_moments
from .errors import SampleSizeError
from .estimators.base import Estimator

__all__ = ["GradientEstimate", "estimate_grad", "expectation", "score", "check_params"]


@dataclass
class GradientEstimate:
    """A Monte Carlo estimate of E[f] and of its gradient, with standard errors.

    Attributes: ``value`` and ``value_stderr`` (0-d tensors); ``grad`` and ``stderr`` (dicts keyed
    like ``params``, each shaped like its parameter); ``n`` samples drawn; ``n_evals`` evaluations
    of f; ``n_units`` independent units behind the standard errors; ``estimator`` (its repr);
    ``seconds`` (wall time); ``per_sample`` (unit-level gradient terms, when asked for);
    ``auto`` (with ``estimator="auto"``: the ``AutoReport`` of the choice, its pilot and cost).
    """

    value: torch.Tensor
    value_stderr: torch.Tensor
    grad: dict[str, torch.Tensor]
    stderr: dict[str, torch.Tensor]
    n: int
    n_evals: int
    n_units: int
    estimator: str = ""
    seconds: float = 0.0
    per_sample: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    auto: object | None = field(default=None, repr=False)

    @property
    def variance_per_sample(self) -> dict[str, torch.Tensor]:
        """n · stderr²: the variance of a one-sample estimator with the same efficiency."""
        return {k: s**2 * self.n for k, s in self.stderr.items()}

    def z_scores(self, exact: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """(estimate - exact) / stderr per parameter element: ~N(0, 1) for an unbiased estimator."""
        return {
            k: (self.grad[k] - torch.as_tensor(exact[k]).to(self.grad[k])) / self.stderr[k]
            for k in self.grad
        }

    def __repr__(self) -> str:
        def fmt(t):
            t = t.detach()
            return f"{t.item():.6g}" if t.numel() == 1 else str(t.flatten()[:6].tolist())

        grads = ", ".join(f"{k}: {fmt(g)} ± {fmt(self.stderr[k])}" for k, g in self.grad.items())
        return (
            f"GradientEstimate(value={fmt(self.value)} ± {fmt(self.value_stderr)}, grad={{{grads}}}, "
            f"n={self.n}, n_evals={self.n_evals}, estimator={self.estimator})"
        )


def estimate_grad(
    f: Callable,
    dist_fn: Callable[..., D.Distribution],
    params: Mapping[str, torch.Tensor],
    n: int,
    estimator: Estimator | None = None,
    *,
    seed: int | None = None,
    chunk_size: int | None = None,
    executor: Executor | None = None,
    batch_size: int | None = None,
    context: torch.Tensor | None = None,
    return_per_sample: bool = False,
) -> GradientEstimate:
    """Estimate E[f(x)] and ∇θ E[f(x)] for x ~ dist_fn(**params), with standard errors.

    Args:
        f: black box from a batch of samples (sample axis first) to one value per sample
            (tensor, NumPy array or list). It never needs gradients for the score function.
        dist_fn: builds any ``torch.distributions.Distribution`` from the parameters.
        params: name -> floating tensor with ``requires_grad``; gradients come back keyed alike.
        n: number of samples.
        estimator: defaults to ``ScoreFunction()`` (no baseline); ``"auto"`` lets a pilot choose
            (``Auto``; n is then a budget of evaluations of f).
        seed: makes the draw reproducible without touching the caller's RNG state.
        chunk_size: samples per chunk; by default chosen so memory stays bounded (n = 10⁸ works).
        executor: evaluate f in batches on any ``concurrent.futures.Executor`` (same result).
        batch_size: samples per executor task.
        context: passed to learned baselines; a tensor with n rows is sliced along with the
            chunks (one row per sample).
        return_per_sample: keep the unit-level gradient terms in ``.per_sample``.

    >>> import torch, scoregrad as sg
    >>> from torch.distributions import Poisson
    >>> lam = torch.tensor(2.0, requires_grad=True)
    >>> est = sg.estimate_grad(lambda x: x ** 2, lambda lam: Poisson(lam), {"lam": lam}, n=200_000,
    ...                        seed=1)
    >>> abs(float(est.grad["lam"]) - 5.0) < 4 * float(est.stderr["lam"])  # d/dλ (λ + λ²) = 1 + 2λ
    True
    """
    n, seed, estimator, dist, chunk_size, batch_size = args.estimate_grad_arguments(
        dist_fn, params, n, estimator, seed, chunk_size, batch_size, executor
    )
    ref = next(iter(params.values()))
    evaluator = Evaluator(
        f, dtype=ref.dtype, device=ref.device, executor=executor, batch_size=batch_size,
        watch=dict(params),
    )  # fmt: skip
    per_sample_size = sum(p.numel() for p in params.values()) + 8
    sizes = chunk_sizes(n, per_sample_size, estimator.granularity, chunk_size, ref.device)
    args.check_plan(estimator, sizes, chunk_size, context, n)
    start = time.perf_counter()
    with seeded(seed, ref.device):
        if len(sizes) == 1:  # one chunk: moments straight from shifted sums, no streaming merge
            c = estimator.contributions(evaluator, dist_fn, params, n, context=context)
            value, value_se, grads, stderrs, units, per_sample = _chunk_moments(
                c, params, return_per_sample
            )
        else:
            value, value_se, grads, stderrs, units, per_sample = _streamed(
                estimator, evaluator, dist_fn, params, sizes, context, return_per_sample
            )
    seconds = time.perf_counter() - start
    args.check_estimate(dist, params, grads, estimator)
    dtype = ref.dtype
    value_dtype = torch.promote_types(evaluator.value_dtype or dtype, dtype)  # f's own precision
    return GradientEstimate(
        value=value.to(value_dtype),
        value_stderr=value_se.to(value_dtype),
        grad={k: g.to(dtype).view(params[k].shape) for k, g in grads.items()},
        stderr={k: s.to(dtype).view(params[k].shape) for k, s in stderrs.items()},
        n=n,
        n_evals=evaluator.n_evals,
        n_units=units,
        estimator=repr(estimator),
        seconds=seconds,
        per_sample=per_sample if return_per_sample else None,
        auto=estimator.report,
    )


#: below this many numbers, one chunk's moments are taken from a single concatenated tensor
#: (fewest tensor operations); above it, tensor by tensor (no extra copy)
_CONCAT_BELOW = 2**16


def _chunk_moments(c, params, keep):
    """Estimate, standard error and unit count of the value and every gradient of one chunk."""
    names = list(c.grads)
    units_v = unit_means(c.values, c.block)
    units_g = {k: unit_means(c.grads[k], c.block) for k in names}
    m = units_v.shape[0]
    per_sample = {k: u.detach() for k, u in units_g.items()} if keep else None
    widths = [1] + [params[k].numel() for k in names]
    # one pass over a concatenation on accelerators (kernel launches dominate there) and for small
    # chunks; tensor by tensor on the CPU for large ones (no extra copy)
    if m * sum(widths) <= _CONCAT_BELOW or units_v.device.type != "cpu":
        flat = torch.cat([units_v.reshape(m, 1)] + [units_g[k].reshape(m, -1) for k in names], 1)
        mean, se, _ = _moments(flat)
        means, ses = mean.split(widths), se.split(widths)
        return (
            means[0][0],
            ses[0][0],
            dict(zip(names, means[1:])),
            dict(zip(names, ses[1:])),
            m,
            per_sample,
        )
    value, value_se, _ = _moments(units_v)
    grads, stderrs = {}, {}
    for k in names:
        grads[k], stderrs[k], _ = _moments(units_g[k])
    return value, value_se, grads, stderrs, m, per_sample


def _moments(units: torch.Tensor):
    """(mean, standard error of the mean, number of units) over axis 0, in float64."""
    count, mean, m2 = shifted_moments(units)
    var = m2 / (count - 1) if count > 1 else torch.full_like(m2, float("nan"))
    return mean, (var / count).sqrt(), count


def _streamed(estimator, evaluator, dist_fn, params, sizes, context, keep):
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
    return (
        value_stats.mean,
        value_stats.stderr(),
        {k: s.mean for k, s in grad_stats.items()},
        {k: s.stderr() for k, s in grad_stats.items()},
        value_stats.count,
        {k: torch.cat(v) for k, v in kept.items()} if keep else None,
    )


def expectation(
    f: Callable,
    dist: D.Distribution,
    n: int,
    estimator: Estimator | None = None,
    *,
    seed: int | None = None,
    context: torch.Tensor | None = None,
    executor: Executor | None = None,
    item_shape: tuple[int, ...] = (),
) -> torch.Tensor:
    """A scalar tensor: value = MC estimate of E[f(x)], x ~ dist; ``.backward()`` = the estimator.

    For the score function the surrogate is built with the DiCE magic box, so it can be
    differentiated again: Hessians of expectations are unbiased too. f's output keeps its own
    graph (only the samples are detached), so parameters f depends on directly get their pathwise
    gradient too, as in a VAE's decoder. With ``item_shape`` = dist.batch_shape[:k], f returns
    (n, *item_shape) values (e.g. one per data point); the result is the sum over items of each
    item's expectation, and baselines act per item (leave-one-out across the n samples of an item).
    ``estimator="auto"`` lets a pilot choose (``Auto``: pass an ``Auto()`` object you keep across
    steps, so it remembers its choice; its ``report`` says what it chose).

    >>> import torch, scoregrad as sg
    >>> from torch.distributions import Poisson
    >>> lam = torch.tensor(1.5, requires_grad=True)
    >>> loss = sg.expectation(lambda x: x ** 2, Poisson(lam), n=400_000, seed=0)
    >>> (g,) = torch.autograd.grad(loss, lam, create_graph=True)
    >>> (h,) = torch.autograd.grad(g, lam)       # d²/dλ² (λ + λ²) = 2
    >>> abs(float(h) - 2.0) < 0.1
    True
    """
    checked = args.expectation_arguments(dist, n, estimator, seed, executor)
    n, seed, estimator = checked.n, checked.seed, checked.estimator
    item_shape = tuple(item_shape)
    if item_shape and tuple(dist.batch_shape[: len(item_shape)]) != item_shape:
        raise SampleSizeError(
            f"item_shape {item_shape} must be the leading batch dimensions of the distribution, "
            f"whose batch shape is {tuple(dist.batch_shape)}."
        )
    ref = args.distribution_reference(dist)
    evaluator = Evaluator(
        f, executor=executor, item_shape=item_shape,
        dtype=None if ref is None else ref.dtype, device=None if ref is None else ref.device,
    )  # fmt: skip
    with seeded(seed, None if ref is None else ref.device):
        value, surrogate = estimator.surrogate(evaluator, dist, n, context=context)
    return surrogate


def score(
    dist_fn: Callable[..., D.Distribution],
    params: Mapping[str, torch.Tensor],
    x: torch.Tensor,
    create_graph: bool = False,
) -> dict[str, torch.Tensor]:
    """Per-sample scores ∇θ log p(x_i; θ), {name: (n, *param.shape)}, in one backward pass.

    >>> import torch, scoregrad as sg
    >>> from torch.distributions import Normal
    >>> mu, sigma = torch.tensor(0.0, requires_grad=True), torch.tensor(2.0, requires_grad=True)
    >>> s = sg.score(lambda mu, sigma: Normal(mu, sigma), {"mu": mu, "sigma": sigma},
    ...              torch.tensor([2.0, -4.0]))
    >>> s["mu"]                                       # (x - mu) / sigma²
    tensor([ 0.5000, -1.0000])
    """
    check_params(params)
    args.build_checked(dist_fn, params)
    x = args.as_points(x, params)
    model = SampleModel.expand(dist_fn, params, x.shape[0])
    return model.score(x, create_graph=create_graph, check_support=True)
