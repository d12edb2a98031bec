"""Generalised advantage estimation on time-major step batches, with time-limit bootstrapping.

For one sub-environment, with V the learned value (the control variate of the score-function
estimator) and s'_t the observation the step returned (the final one when the episode ended),

    δ_t = r_t + γ (1 − terminated_t) V(s'_t) − V(s_t)
    A_t = δ_t + γ λ (1 − ended_t) A_{t+1},            ended_t = terminated_t or truncated_t

(Schulman et al. 2016, "High-dimensional continuous control using GAE"). A true termination
bootstraps with 0; a time-limit truncation, which ends the episode but not the task, bootstraps
with V(s'_t) (Pardo et al. 2018, "Time limits in reinforcement learning"), and so does the end of a
batch that cuts an episode. The λ-recursion stops at every episode end.

λ = 1 with V ≡ 0 and no cuts is the reward-to-go, hence REINFORCE. Any V gives an unbiased
score-function estimator at λ = 1 when no episode is cut; λ < 1 and bootstrapped cuts are
unbiased only when V is the policy's true value (the bias is measured in tests/rl/test_bias.py).

>>> import torch
>>> r = torch.tensor([[1.0], [1.0], [1.0]])
>>> v = torch.zeros(3, 1); nv = torch.zeros(3, 1)
>>> term = torch.tensor([[False], [False], [True]])
>>> gae(r, v, nv, term, term, gamma=0.5, lam=1.0).squeeze(1)
tensor([1.7500, 1.5000, 1.0000])
"""

from __future__ import annotations

import torch

__all__ = ["gae"]


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    ended: torch.Tensor,
    *,
    gamma: float,
    lam: float,
) -> torch.Tensor:
    """GAE(λ) advantages for (T, k) arrays (time first; see the module docstring).

    ``next_values[t]`` is V of the observation step t returned (its value is ignored where
    ``terminated``); ``ended`` is True where an episode ended at step t (terminated or truncated).
    The return targets for V are ``advantages + values``.
    """
    if not (0.0 <= gamma <= 1.0 and 0.0 <= lam <= 1.0):
        raise ValueError(f"gamma and lambda must lie in [0, 1], got gamma={gamma}, lam={lam}.")
    alive = 1.0 - terminated.to(rewards.dtype)
    going = 1.0 - ended.to(rewards.dtype)
    delta = rewards + gamma * alive * next_values - values
    out = torch.zeros_like(delta)
    running = torch.zeros_like(delta[0])
    for t in range(delta.shape[0] - 1, -1, -1):
        running = delta[t] + gamma * lam * going[t] * running
        out[t] = running
    return out
