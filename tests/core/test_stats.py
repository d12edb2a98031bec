"""Streaming moments: merged chunks equal the one-pass answer, even with a large offset."""

import numpy as np
import torch

from scoregrad.core.stats import RunningMoments, shifted_moments


def test_merge_matches_numpy_with_large_offset():
    rng = np.random.default_rng(0)
    data = 1e8 + rng.standard_normal((10_001, 3))
    rm = RunningMoments()
    for chunk in np.array_split(data, 17):
        rm.update(torch.as_tensor(chunk))
    assert rm.count == 10_001
    assert np.allclose(rm.mean.numpy(), data.mean(0), rtol=0, atol=1e-6)
    assert np.allclose(rm.variance().numpy(), data.var(0, ddof=1), rtol=1e-6)


def test_single_unit_has_undefined_variance():
    rm = RunningMoments()
    rm.update(torch.ones(1, 2))
    assert torch.isnan(rm.variance()).all()


def test_shifted_moments_in_float32_with_an_offset():
    """float32 data far from zero: the shift keeps the variance accurate (rel. error < 1e-3)."""
    rng = np.random.default_rng(1)
    data = (1e4 + rng.standard_normal((200_000, 2))).astype(np.float32)
    count, mean, m2 = shifted_moments(torch.as_tensor(data))
    ref = data.astype(np.float64)
    assert count == 200_000
    assert np.allclose(mean.numpy(), ref.mean(0), rtol=0, atol=1e-3)
    assert np.allclose((m2 / (count - 1)).numpy(), ref.var(0, ddof=1), rtol=1e-3)
