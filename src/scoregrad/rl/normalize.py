"""Running normalisation of observations and rewards (statistics saved in the checkpoint).

* ``ObsNormalizer``: o ↦ clip((o − m) / √(v + ε), ±c) with m, v the running mean and variance of
  every observation received so far (per coordinate), updated as observations arrive. The policy
  and the value see normalised observations; a saved policy is evaluated with the saved, frozen
  statistics (``scoregrad.rl.evaluate``).
* ``RewardScaler``: r ↦ clip(r / √(v_R + ε), ±c) with v_R the running variance of each
  sub-environment's discounted return R ← γ R + r (reset at episode ends), as in Stable-Baselines3's
  ``VecNormalize``. It rescales the objective by a slowly drifting positive factor: the direction
  of the gradient is that of the raw objective only while the factor is constant (documented as a
  biased option in docs/rl.md); the reported episode returns are always the raw ones.

Moments are merged with the core's ``RunningMoments`` (Chan et al.), in float64.

>>> import torch
>>> n = ObsNormalizer(2)
>>> _ = n(torch.tensor([[0.0, 10.0], [2.0, 30.0]]))     # updates, then normalises
>>> n(torch.tensor([[1.0, 20.0]]), update=False)
tensor([[0., 0.]])
"""

from __future__ import annotations

import torch

from ..core import RunningMoments

__all__ = ["ObsNormalizer", "RewardScaler"]


class _Moments:
    """``RunningMoments`` with a variance of 1 before two values arrive, and a state_dict."""

    def __init__(self, shape):
        self.shape = tuple(shape)
        self.moments = RunningMoments()

    def update(self, x: torch.Tensor) -> None:
        self.moments.update(x.reshape(-1, *self.shape).to(torch.float64))

    def mean_var(self) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.moments
        if m.count < 2:
            return torch.zeros(self.shape, dtype=torch.float64), torch.ones(
                self.shape, dtype=torch.float64
            )
        return m.mean, m.m2 / m.count

    def state_dict(self) -> dict:
        m = self.moments
        return {"count": m.count, "mean": m.mean, "m2": m.m2}

    def load_state_dict(self, state: dict) -> None:
        m = self.moments
        m.count, m.mean, m.m2 = int(state["count"]), state["mean"], state["m2"]


class ObsNormalizer:
    """Running mean/variance normalisation of (batch, *shape) observations (module docstring)."""

    def __init__(self, shape, clip: float = 10.0, eps: float = 1e-8):
        self.shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.clip, self.eps = float(clip), float(eps)
        self.stats = _Moments(self.shape)

    def __call__(self, obs: torch.Tensor, update: bool = True) -> torch.Tensor:
        if update:
            self.stats.update(obs)
        mean, var = self.stats.mean_var()
        x = (obs.to(torch.float64) - mean) / torch.sqrt(var + self.eps)
        return x.clamp(-self.clip, self.clip).to(torch.float32)

    def state_dict(self) -> dict:
        return self.stats.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.stats.load_state_dict(state)


class RewardScaler:
    """Rewards divided by the running std of the discounted return, per sub-env (docstring)."""

    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0, eps: float = 1e-8):
        self.gamma, self.clip, self.eps = float(gamma), float(clip), float(eps)
        self.stats = _Moments(())
        self.running = torch.zeros(num_envs, dtype=torch.float64)

    def __call__(self, reward: torch.Tensor, ended: torch.Tensor) -> torch.Tensor:
        """Scale one step's rewards (k,) and update; ``ended`` (k,) resets R after this step."""
        r = reward.to(torch.float64)
        self.running = self.gamma * self.running + r
        self.stats.update(self.running)
        self.running = torch.where(ended, torch.zeros_like(self.running), self.running)
        _, var = self.stats.mean_var()
        return (r / torch.sqrt(var + self.eps)).clamp(-self.clip, self.clip).to(torch.float32)

    def state_dict(self) -> dict:
        return {"moments": self.stats.state_dict(), "running": self.running.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.stats.load_state_dict(state["moments"])
        self.running = state["running"].clone()
