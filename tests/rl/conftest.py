"""Small registered environments with known dynamics for the rl tests."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces


class CountdownEnv(gym.Env):
    """Episode length L drawn at reset from {1..4}; obs = [L, steps left]; reward = step index + 1.

    Known returns: L(L+1)/2. The first observation of an episode has obs[1] == obs[0] == L.
    """

    def __init__(self):
        self.observation_space = spaces.Box(0.0, 10.0, (2,), np.float32)
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.L = int(self.np_random.integers(1, 5))
        self.t = 0
        return np.array([self.L, self.L], np.float32), {}

    def step(self, action):
        self.t += 1
        obs = np.array([self.L, self.L - self.t], np.float32)
        return obs, float(self.t), self.t >= self.L, False, {}


class NaNRewardEnv(CountdownEnv):
    def step(self, action):
        obs, r, term, trunc, info = super().step(action)
        return obs, (float("nan") if self.t == 2 else r), term, trunc, info


class TabularMDP(gym.Env):
    """Two states, two actions, stochastic transitions and termination (exact values by DP).

    From state s with action a: reward R[s, a]; the episode terminates with probability Q[s, a],
    otherwise moves to s' ~ P[s, a]. Start state 0; a time limit H truncates.
    """

    R = np.array([[1.0, 0.0], [-1.0, 2.0]])
    Q = np.array([[0.1, 0.3], [0.2, 0.5]])
    P = np.array([[[0.7, 0.3], [0.2, 0.8]], [[0.6, 0.4], [0.1, 0.9]]])

    def __init__(self):
        self.observation_space = spaces.Discrete(2)
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.s = 0
        return self.s, {}

    def step(self, action):
        s, a = self.s, int(action)
        r = self.R[s, a]
        if self.np_random.random() < self.Q[s, a]:
            return s, r, True, False, {}
        self.s = int(self.np_random.random() < self.P[s, a, 1])
        return self.s, r, False, False, {}

    @classmethod
    def exact_value(cls, probs: torch.Tensor, horizon: int) -> torch.Tensor:
        """J = E[Σ_t r_t] (undiscounted) for a policy given as probs[s, a], by backward DP."""
        R, Q, P = (torch.as_tensor(x, dtype=probs.dtype) for x in (cls.R, cls.Q, cls.P))
        V = torch.zeros(2, dtype=probs.dtype)
        for _ in range(horizon):
            q = R + (1 - Q) * (P @ V)  # (s, a)
            V = (probs * q).sum(1)
        return V[0]


for _id, _cls in [
    ("ScoregradTest/Countdown-v0", CountdownEnv),
    ("ScoregradTest/NaNReward-v0", NaNRewardEnv),
    ("ScoregradTest/TabularMDP-v0", TabularMDP),
]:
    if _id not in gym.registry:
        gym.register(_id, entry_point=_cls, max_episode_steps=3 if "Tabular" in _id else 10)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _keep_global_rng():
    """Tests here may seed torch's global RNG; restore it so other tests see no difference."""
    with torch.random.fork_rng(devices=[]):
        yield


class ShiftedDiscreteEnv(gym.Env):
    """Discrete observations numbered from 5 and actions from -1; episodes of 2 or 4 steps."""

    def __init__(self):
        self.observation_space = spaces.Discrete(3, start=5)
        self.action_space = spaces.Discrete(2, start=-1)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return 5, {}

    def step(self, action):
        self.t += 1
        return 5 + self.t % 3, float(action), self.t >= (2 if action < 0 else 4), False, {}


if "ScoregradTest/ShiftedDiscrete-v0" not in gym.registry:
    gym.register(
        "ScoregradTest/ShiftedDiscrete-v0", entry_point=ShiftedDiscreteEnv, max_episode_steps=6
    )


@pytest.fixture(autouse=True)
def _runs_in_tmp(tmp_path, monkeypatch):
    """Commands without --out write runs/ under the working directory: keep it in tmp."""
    monkeypatch.chdir(tmp_path)
