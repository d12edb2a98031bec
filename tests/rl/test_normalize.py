"""Running observation and reward normalisation: the statistics and their state."""

import numpy as np
import torch

from scoregrad.rl.normalize import ObsNormalizer, RewardScaler


def test_obs_normalizer_uses_the_running_mean_and_variance():
    rng = np.random.default_rng(0)
    xs = [torch.as_tensor(rng.normal(3.0, 2.0, (4, 3))) for _ in range(5)]
    n = ObsNormalizer(3, clip=100.0)
    for x in xs:
        n(x)
    allx = torch.cat(xs).numpy()
    probe = torch.ones(1, 3, dtype=torch.float64)
    want = (1.0 - allx.mean(0)) / np.sqrt(allx.var(0) + 1e-8)
    assert np.allclose(n(probe, update=False).numpy()[0], want, atol=1e-6)
    m = ObsNormalizer(3, clip=100.0)
    m.load_state_dict(n.state_dict())
    assert torch.equal(m(probe, update=False), n(probe, update=False))
    assert ObsNormalizer(3, clip=1.0)(torch.full((1, 3), 50.0)).abs().max() <= 1.0


def test_reward_scaler_divides_by_the_std_of_the_discounted_return():
    s = RewardScaler(2, gamma=0.5)
    ended = torch.tensor([False, True])
    outs = [s(torch.tensor([1.0, 2.0]), ended) for _ in range(3)]
    # returns seen: env 0: 1, 1.5, 1.75; env 1 restarts each step: 2, 2, 2
    seen = np.array([1.0, 2.0, 1.5, 2.0, 1.75, 2.0])
    assert np.isclose(float(outs[-1][1]), 2.0 / np.sqrt(seen.var() + 1e-8), rtol=1e-5)
    t = RewardScaler(2, gamma=0.5)
    t.load_state_dict(s.state_dict())
    assert torch.equal(t.running, s.running) and t.stats.moments.count == 6
