"""The two doors into the estimators: ``estimate_grad`` (with standard errors) and ``expectation``
(a differentiable surrogate for training loops), plus ``score`` (per-sample score vectors).

    ∇θ E_{p(x;θ)}[f(x)] ≈ (1/m) Σ_u ĝ_u,   stderr = sd(ĝ_u) / √m

where ĝ_u are the independent units an estimator produces (single samples, antithetic pairs or
quasi-random replicates). n larger than memory is processed in chunks whose unit statistics are
merged with a numerically stable running mean and variance, so memory stays constant in n.

Both doors are thin wrappers over the prepared path (``prepared.py``: ``scoregrad.prepare``
and ``scoregrad.prepare_expectation``), so a one-shot call and a prepared call are one
implementation and give the same numbers for the same seed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Executor

import torch
import torch.distributions as D

from .core import arguments as args
from .core.arguments import check_params
from .core.model import SampleModel
from .core.result import GradientEstimate
from .estimators.base import Estimator
from .prepared import PreparedEstimate, PreparedExpectation

__all__ = ["GradientEstimate", "estimate_grad", "expectation", "score", "check_params"]


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
            (``Auto``; n is then a budget of evaluations of f, and ``.auto`` its report).
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
    prepared = PreparedEstimate(
        f, dist_fn, params, n, estimator, chunk_size=chunk_size, executor=executor,
        batch_size=batch_size, return_per_sample=return_per_sample, _seed=seed,
    )  # fmt: skip
    return prepared(params, seed=seed, context=context)


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
    ``estimator="auto"`` lets a pilot choose (``Auto``: keep one ``Auto()`` across steps so it
    remembers its choice; its ``report`` says what it chose).

    >>> import torch, scoregrad as sg
    >>> from torch.distributions import Poisson
    >>> lam = torch.tensor(1.5, requires_grad=True)
    >>> loss = sg.expectation(lambda x: x ** 2, Poisson(lam), n=400_000, seed=0)
    >>> (g,) = torch.autograd.grad(loss, lam, create_graph=True)
    >>> (h,) = torch.autograd.grad(g, lam)       # d²/dλ² (λ + λ²) = 2
    >>> abs(float(h) - 2.0) < 0.1
    True
    """
    prepared = PreparedExpectation(
        f, n, estimator, item_shape=item_shape, executor=executor, _first=(dist, seed)
    )
    return prepared(dist, seed=seed, context=context)


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
    dist = args.build_checked(dist_fn, params)
    x = args.as_points(x, params, tuple(dist.batch_shape) + tuple(dist.event_shape))
    model = SampleModel.expand(dist_fn, params, x.shape[0])
    return model.score(x, create_graph=create_graph, check_support=True)
