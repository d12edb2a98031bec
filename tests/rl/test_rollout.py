import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from scoregrad.rl import (
    NonFiniteRewardError,
    UnknownEnvironmentError,
    UnsupportedSpaceError,
    collect,
    make_envs,
    make_policy,
)


def _policy(envs):
    return make_policy(envs.single_observation_space, envs.single_action_space, hidden=(4,))


@pytest.mark.parametrize("num_envs", [1, 2, 3, 7])
def test_episode_boundaries_and_autoreset_step_are_masked(num_envs):
    """More episodes than sub-envs: each later episode starts after Gymnasium's auto-reset step,
    whose observation is the new episode's first one and whose reward (0) is not recorded."""
    envs, T = make_envs("ScoregradTest/Countdown-v0", num_envs)
    pi = _policy(envs)
    b = collect(envs, pi, 7, T, torch.Generator().manual_seed(0), seeds=list(range(num_envs)))
    L = b.obs[:, 0, 0].long()  # each episode's length, as its first observation announces
    assert (b.obs[:, 0, 1] == b.obs[:, 0, 0]).all()  # every row starts at a reset observation
    assert torch.equal(b.lengths, L)
    assert torch.equal(b.mask.sum(1), L)
    assert torch.equal(b.mask, torch.arange(b.mask.shape[1]) < L[:, None])
    steps = torch.arange(1, b.mask.shape[1] + 1, dtype=torch.float32)
    torch.testing.assert_close(b.rewards, steps * b.mask)  # reward t+1 at step t, 0 on padding
    torch.testing.assert_close(b.returns, (L * (L + 1) / 2).double())
    # steps left count down inside each episode: no observation from another episode leaks in
    left = b.obs[:, :, 1]
    assert torch.equal(left[b.mask], (L[:, None] - torch.arange(b.mask.shape[1]))[b.mask].float())
    assert b.terminated.all() and b.env_steps == int(L.sum())
    envs.close()


def test_batches_are_reproducible_from_seeds():
    envs, T = make_envs("CartPole-v1", 3)
    pi = _policy(envs)
    a = collect(envs, pi, 5, T, torch.Generator().manual_seed(1), seeds=[4, 5, 6])
    b = collect(envs, pi, 5, T, torch.Generator().manual_seed(1), seeds=[4, 5, 6])
    assert torch.equal(a.obs, b.obs) and torch.equal(a.actions, b.actions)
    envs.close()


def test_truncation_at_time_limit():
    envs, T = make_envs("CartPole-v1", 2, max_steps=5)
    pi = _policy(envs)
    b = collect(envs, pi, 2, T, torch.Generator().manual_seed(0), seeds=[0, 1])
    assert T == 5 and (b.lengths <= 5).all() and b.mask.shape[1] <= 5
    envs.close()


def test_non_finite_reward_raises():
    envs, T = make_envs("ScoregradTest/NaNReward-v0", 1)
    with pytest.raises(NonFiniteRewardError, match="non-finite reward"):
        # episodes of length >= 2 reach the NaN; try seeds until one does
        for s in range(20):
            collect(envs, _policy(envs), 1, T, torch.Generator(), seeds=[s])


def test_unknown_env_suggests_close_matches():
    with pytest.raises(UnknownEnvironmentError, match="CartPole-v1"):
        make_envs("CartPole-v2", 1)
    with pytest.raises(UnknownEnvironmentError, match="Did you mean"):
        make_envs("cartpole", 1)


def test_unsupported_spaces():
    box = spaces.Box(-1, 1, (3,))
    with pytest.raises(UnsupportedSpaceError, match="action space"):
        make_policy(box, spaces.MultiDiscrete([2, 3]))
    with pytest.raises(UnsupportedSpaceError, match="FlattenObservation"):
        make_policy(spaces.Dict({"a": box}), spaces.Discrete(2))


def test_gaussian_policy_clips_only_for_the_env():
    envs, T = make_envs("Pendulum-v1", 2, max_steps=4)
    pi = make_policy(envs.single_observation_space, envs.single_action_space, log_std=2.0)
    b = collect(envs, pi, 2, T, torch.Generator().manual_seed(0), seeds=[0, 1])
    assert b.actions.shape == (2, 4, 1)
    assert b.actions.abs().max() > 2.0  # the stored (scored) draw is unclipped
    assert np.abs(pi.to_env(b.actions[:, 0])).max() <= 2.0
    envs.close()
    assert gym.spec("Pendulum-v1").max_episode_steps == 200
