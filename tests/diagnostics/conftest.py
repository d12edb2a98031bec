"""Shared fixtures for the diagnostics tests."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread per test: the compare timings and pilots stay steady under xdist."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)
