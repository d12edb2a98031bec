"""Streaming moments: merged chunks equal the one-pass answer, even with a large offset."""

import numpy as np
import torch

from scoregrad._stats import RunningMoments


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
