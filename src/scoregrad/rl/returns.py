"""Returns on padded batches of episodes: reward-to-go, discounting, masks, normalisation.

Episodes are stored time-aligned in (B, T) arrays: row i is episode i, column t its step t, and
``mask[i, t]`` is True while episode i is still running at step t (steps after its end, including
Gymnasium's auto-reset step, are padding with reward 0 and mask False). The reward-to-go is

    G_t = Σ_{k ≥ t} γ^{k-t} r_k m_k,

computed backwards in time with one vectorised operation per time step (never per episode).

>>> import torch
>>> r = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
>>> m = torch.tensor([[True, True, True], [True, False, False]])
>>> reward_to_go(r, m, gamma=0.5)
tensor([[1.7500, 1.5000, 1.0000],
        [1.0000, 0.0000, 0.0000]])
"""

from __future__ import annotations

import torch

__all__ = ["reward_to_go", "discounted_return", "masked_mean", "normalize"]


def reward_to_go(rewards: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """G[i, t] = Σ_{k≥t} γ^{k-t} r[i, k] m[i, k] for (B, T) rewards and mask; 0 on padding."""
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"the discount gamma must lie in [0, 1], got {gamma}.")
    r = rewards * mask.to(rewards.dtype)
    out = torch.zeros_like(r)
    running = torch.zeros_like(r[:, 0])
    for t in range(r.shape[1] - 1, -1, -1):
        running = r[:, t] + gamma * running
        out[:, t] = running
    return out * mask.to(rewards.dtype)


def discounted_return(
    rewards: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0
) -> torch.Tensor:
    """Σ_t γ^t r_t m_t per episode: shape (B,)."""
    t = torch.arange(rewards.shape[1], device=rewards.device, dtype=rewards.dtype)
    return (rewards * mask.to(rewards.dtype) * gamma**t).sum(1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(x.dtype)
    return (x * m).sum() / m.sum().clamp_min(1.0)


def normalize(
    x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8, tol: float = 0.0
) -> torch.Tensor:
    """(x - mean) / std over the unmasked entries; padding stays 0. A single entry maps to 0.

    When the spread is at most ``tol`` (e.g. round-off of advantages that are exactly zero in
    exact arithmetic, as when every episode of a batch has the same returns) the result is 0:
    dividing round-off by its own tiny std would turn it into full-size random updates.
    """
    m = mask.to(x.dtype)
    count = m.sum()
    mean = (x * m).sum() / count.clamp_min(1.0)
    var = (((x - mean) * m) ** 2).sum() / (count - 1.0).clamp_min(1.0)
    std = var.sqrt()
    if float(std) <= tol:
        return torch.zeros_like(x)
    return (x - mean) / (std + eps) * m
