"""The two doors for models with several random choices: ``expectation`` and ``estimate_grad``.

* ``expectation(model, n)`` returns a scalar whose value is the Monte Carlo estimate of
  E[Σ costs] and whose gradient is every choice's estimator (DiCE surrogate, for training loops).
* ``estimate_grad(model, params, n)`` returns a ``GradientEstimate``: the gradient with respect to
  each parameter with standard errors, from per-sample gradients of the surrogate (one batched
  backward pass per chunk, ``torch.autograd.grad(..., is_grads_batched=True)``).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping

import torch

from ..core.chunks import chunk_sizes
from ..core.seeding import seeded
from ..core.stats import RunningMoments
from ..errors import ParameterError, SampleSizeError
from ..estimate import GradientEstimate
from .surrogate import execute

__all__ = ["expectation", "estimate_grad"]

#: most samples per chunk in estimate_grad (its batched backward holds chunk² numbers)
MAX_CHUNK = 512


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        try:
            import numpy as np

            if isinstance(n, np.integer) and n >= 1:
                return int(n)
        except ImportError:  # pragma: no cover
            pass
        raise SampleSizeError(f"n must be a positive integer number of samples, got {n!r}.")
    return n


def _device(params) -> torch.device | None:
    for p in params:
        return p.device
    return None


def expectation(
    model: Callable, n: int, *, seed: int | None = None, causal: bool = True, plates: bool = True
) -> torch.Tensor:
    """A scalar: value = Monte Carlo estimate of E[Σ costs] of ``model(g)`` with n samples;
    ``.backward()`` deposits every choice's estimator on the parameters the model used.

    ``causal=False`` and ``plates=False`` switch off the structure (each score then multiplies
    every cost, summed over plates): the same estimators without their Rao-Blackwellisation.

    >>> import torch, scoregrad as sg
    >>> from torch.distributions import Bernoulli
    >>> a, b = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
    >>> def model(g):
    ...     z1 = g.sample("z1", Bernoulli(logits=a), sg.Enumerate())
    ...     z2 = g.sample("z2", Bernoulli(logits=b + 2 * z1), sg.Enumerate())
    ...     g.cost("c", (z1 + z2).sum(-1))
    >>> loss = sg.graphs.expectation(model, n=4000, seed=0)
    >>> loss.backward()          # z1 summed exactly; z2 sampled in each branch
    >>> bool(abs(a.grad - 0.25 * (1 + torch.sigmoid(torch.tensor(2.0)) - 0.5)) < 0.01)
    True
    """
    n = _check_n(n)
    with seeded(seed, None):
        ex = execute(model, n, causal=causal, plates=plates)
    return ex.surrogate.mean()


def estimate_grad(
    model: Callable,
    params: Mapping[str, torch.Tensor],
    n: int,
    *,
    seed: int | None = None,
    chunk_size: int | None = None,
    causal: bool = True,
    plates: bool = True,
    return_per_sample: bool = False,
) -> GradientEstimate:
    """E[Σ costs] of ``model(g)`` and its gradient with respect to ``params``, with standard errors.

    ``params`` are the tensors the model uses (name -> leaf tensor with ``requires_grad``), e.g.
    ``dict(net.named_parameters())``; gradients come back keyed alike. Each sample of the model is
    one unit behind the standard errors (a leave-one-out baseline couples them only through
    detached means, as in ``scoregrad.estimate_grad``). n_evals counts samples of the model over
    every execution, re-executions included.

    >>> import torch, scoregrad as sg
    >>> from torch.distributions import Bernoulli
    >>> a = torch.zeros(3, requires_grad=True)
    >>> def model(g):
    ...     z = g.sample("z", Bernoulli(logits=a), sg.DisARM())
    ...     g.cost("c", ((z - 0.45) ** 2).sum(-1))
    >>> est = sg.graphs.estimate_grad(model, {"a": a}, n=2000, seed=0)
    >>> bool(((est.grad["a"] - 0.025).abs() < 4.42 * est.stderr["a"]).all())   # ¼ (1 - 0.9)
    True
    """
    n = _check_n(n)
    if not isinstance(params, Mapping) or not params:
        raise ParameterError(
            "params must be a non-empty dict of name -> tensor, e.g. dict(net.named_parameters())."
        )
    for k, p in params.items():
        if not isinstance(p, torch.Tensor) or not p.is_floating_point() or not p.requires_grad:
            raise ParameterError(
                f"parameter {k!r} must be a floating tensor with requires_grad=True (the tensors "
                "the model uses), got "
                f"{type(p).__name__ if not isinstance(p, torch.Tensor) else p.dtype}."
            )
    names, leaves = list(params), list(params.values())
    ref = leaves[0]
    per = sum(p.numel() for p in leaves) + 8
    sizes = chunk_sizes(n, per, 1, chunk_size and min(chunk_size, MAX_CHUNK), ref.device,
                        most=MAX_CHUNK)  # fmt: skip
    value_stats = RunningMoments()
    grad_stats = {k: RunningMoments() for k in names}
    kept: dict[str, list[torch.Tensor]] = {k: [] for k in names}
    n_evals, biased = 0, False
    start = time.perf_counter()
    verified: set[int] = set()  # the sample sizes whose inferred sample axes were checked
    with seeded(seed, ref.device):
        for m in sizes:
            ex = execute(model, m, causal=causal, plates=plates, verify=m not in verified)
            verified.add(m)
            n_evals += ex.n_evals
            biased = biased or ex.biased
            grads = _per_sample_grads(ex.surrogate, leaves)
            value_stats.update(ex.value.reshape(m, 1))
            for k, gk in zip(names, grads, strict=True):
                grad_stats[k].update(gk.reshape(m, -1))
                if return_per_sample:
                    kept[k].append(gk.detach())
    if biased:
        warnings.warn(
            "a relaxed (biased) estimator handles some choice: the gradient is that of the relaxed "
            "objective, not of the discrete one.",
            stacklevel=2,
        )
    dtype = ref.dtype
    return GradientEstimate(
        value=value_stats.mean.reshape(()).to(dtype),
        value_stderr=value_stats.stderr().reshape(()).to(dtype),
        grad={k: grad_stats[k].mean.to(dtype).view(params[k].shape) for k in names},
        stderr={k: grad_stats[k].stderr().to(dtype).view(params[k].shape) for k in names},
        n=n,
        n_evals=n_evals,
        n_units=n,
        estimator="graph" + (" (biased)" if biased else ""),
        seconds=time.perf_counter() - start,
        per_sample={k: torch.cat(v) for k, v in kept.items()} if return_per_sample else None,
    )


def _per_sample_grads(surrogate: torch.Tensor, leaves: list[torch.Tensor]) -> list[torch.Tensor]:
    """∇ S_i for every sample i, (m, *param.shape) per leaf, in one batched backward pass (a loop
    over groups of samples only where an operation has no batching rule)."""
    m = surrogate.shape[0]
    eye = torch.eye(m, dtype=surrogate.dtype, device=surrogate.device)
    try:
        outs = torch.autograd.grad(
            surrogate, leaves, grad_outputs=eye, is_grads_batched=True, allow_unused=True,
            retain_graph=True,
        )  # fmt: skip
    except RuntimeError:
        outs = _grouped_grads(surrogate, leaves)
    return [
        o if o is not None else torch.zeros(m, *p.shape, dtype=p.dtype, device=p.device)
        for o, p in zip(outs, leaves, strict=True)
    ]


def _grouped_grads(surrogate, leaves):
    rows = []
    for i in range(surrogate.shape[0]):
        rows.append(torch.autograd.grad(surrogate[i], leaves, allow_unused=True, retain_graph=True))
    return [
        None if all(r[j] is None for r in rows) else torch.stack(
            [r[j] if r[j] is not None else torch.zeros_like(leaves[j]) for r in rows]
        )
        for j in range(len(leaves))
    ]  # fmt: skip
