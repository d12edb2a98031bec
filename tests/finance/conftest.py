"""Every finance test runs at a fixed seed and leaves the global RNG state as it found it."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _fixed_seed():
    with torch.random.fork_rng():
        torch.manual_seed(20_241_127)
        yield
