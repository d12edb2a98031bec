"""Evaluating a black-box f through any ``concurrent.futures.Executor``.

The samples are drawn in the calling process (so the random stream, and hence the estimate for a
given seed, is exactly the one of an in-process run); only f is shipped out, in batches, with
``executor.map``. Any executor works: ``ProcessPoolExecutor``, Dask's ``client.get_executor()``,
Ray's ``ray.util.ActorPool``-backed executors. f must be picklable (a module-level function or a
callable object) for process-based executors.

>>> from concurrent.futures import ThreadPoolExecutor
>>> import torch
>>> with ThreadPoolExecutor(2) as ex:
...     map_batches(lambda x: x.sum(1), torch.ones(10, 3), ex, batch_size=4).tolist()
[3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Executor

import numpy as np
import torch


def map_batches(
    f: Callable, x: torch.Tensor, executor: Executor, batch_size: int | None = None
) -> torch.Tensor:
    """f applied to consecutive batches of x (sample axis first) on ``executor``, concatenated."""
    n = x.shape[0]
    if batch_size is None:
        batch_size = max(1, math.ceil(n / 8))
    # clone each batch: a view would pickle the whole storage of x into every task
    batches = [b.clone() for b in torch.split(x.detach(), batch_size)]
    parts = [_as_flat_tensor(r) for r in executor.map(f, batches)]
    return torch.cat(parts) if parts else torch.empty(0)


def _as_flat_tensor(r) -> torch.Tensor:
    if isinstance(r, torch.Tensor):
        return r.detach().reshape(-1)
    return torch.as_tensor(np.asarray(r)).reshape(-1)
