"""Seeding without global state: a seed applies inside ``seeded``, and the caller's RNG is restored.

>>> import torch
>>> before = torch.random.get_rng_state()
>>> with seeded(0):
...     a = torch.rand(2)
>>> with seeded(0):
...     b = torch.rand(2)
>>> bool((a == b).all()), bool((torch.random.get_rng_state() == before).all())
(True, True)
"""

from __future__ import annotations

import contextlib

import torch

__all__ = ["seeded"]


@contextlib.contextmanager
def seeded(seed: int | None, device: torch.device | None = None):
    """Run with torch's RNG seeded, restoring the caller's RNG state afterwards (no global change)."""
    if seed is None:
        yield
        return
    on_cuda = device is not None and device.type == "cuda"
    with torch.random.fork_rng(devices=[device] if on_cuda else []):
        # seed only the generator in use: torch.manual_seed also seeds every accelerator back-end,
        # which costs milliseconds per call
        if on_cuda:
            torch.cuda.manual_seed(seed)
        torch.default_generator.manual_seed(seed)
        yield
