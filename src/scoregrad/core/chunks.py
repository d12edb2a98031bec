"""Chunk planning: how many samples one pass may hold, so memory stays bounded for any n.

A chunk holds at most ``CHUNK_ELEMENTS`` numbers (samples × numbers per sample) on the CPU and
``CHUNK_ELEMENTS_ACCELERATOR`` on a GPU, where each chunk costs a fixed number of kernel launches.
Chunks never split a group of dependent samples (``granularity``: an antithetic pair, a QMC
replicate, a VIMCO group of K).

>>> chunk_sizes(10, per_sample=1, granularity=2, chunk_size=4)
[4, 4, 2]
>>> chunk_sizes(10, per_sample=1, granularity=1, chunk_size=None)
[10]
>>> chunk_sizes(10, per_sample=1, granularity=1, chunk_size=2, min_units=3)
[4, 3, 3]
"""

from __future__ import annotations

import math

import torch

__all__ = ["CHUNK_ELEMENTS", "CHUNK_ELEMENTS_ACCELERATOR", "chunk_sizes", "unit_means"]

#: elements (samples × parameter and draw sizes) one chunk may hold before estimate_grad streams;
#: accelerators get a larger budget, since each chunk costs a fixed number of kernel launches
CHUNK_ELEMENTS = 2**22
CHUNK_ELEMENTS_ACCELERATOR = 2**26


def chunk_sizes(
    n: int,
    per_sample: int,
    granularity: int,
    chunk_size: int | None,
    device=None,
    min_units: int = 1,
    most: int | None = None,
) -> list[int]:
    """Sizes of the chunks that cover n samples, each a multiple of ``granularity`` and, where n
    allows, holding at least ``min_units`` groups (e.g. 3 for leave-one-out coefficients). Without
    ``chunk_size`` a chunk holds at most the element budget (``per_sample`` numbers a sample) and
    at most ``most`` samples (a door whose memory grows faster than its chunk: a batched
    backward pass over the chunk's rows)."""
    if chunk_size is None:
        budget = (
            CHUNK_ELEMENTS if device is None or device.type == "cpu" else CHUNK_ELEMENTS_ACCELERATOR
        )
        chunk_size = max(granularity, budget // max(1, per_sample))
        if most is not None:
            chunk_size = max(granularity, min(chunk_size, most))
    if chunk_size >= n:
        return [n]
    units = n // granularity
    chunks = max(1, min(math.ceil(n / chunk_size), units // max(1, min_units)))
    base, extra = divmod(units, chunks)
    return [(base + (i < extra)) * granularity for i in range(chunks)]


def unit_means(t: torch.Tensor, block: int) -> torch.Tensor:
    """Average consecutive blocks of `block` rows: the independent units behind standard errors."""
    if block == 1:
        return t
    return t.reshape(t.shape[0] // block, block, *t.shape[1:]).mean(1)
