"""Evaluating a saved policy: returns over fresh episodes, greedy or sampled actions.

Observations are normalised with the statistics saved in the checkpoint (frozen), as in training.

>>> from scoregrad.rl import Trainer, TrainConfig, evaluate
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = Trainer(TrainConfig("CartPole-v1", episodes=4, batch_episodes=2), d, progress=False).train()
>>> ev = evaluate(d / "checkpoint.pt", episodes=3, seed=1)
>>> len(ev["returns"])
3
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ..errors import ScoregradError
from .normalize import ObsNormalizer
from .rollout import collect, make_envs
from .trainer import CheckpointError, TrainConfig, load_checkpoint, policy_for

__all__ = ["evaluate"]


class _Actor(torch.nn.Module):
    """The saved policy on observations normalised with the saved, frozen statistics; its mode
    (``policy.greedy``: argmax, or the Gaussian mean) or its draws."""

    def __init__(self, policy, obs_norm: ObsNormalizer | None, greedy: bool):
        super().__init__()
        self.policy, self.obs_norm, self.greedy = policy, obs_norm, greedy

    def sample(self, obs, generator):
        if self.obs_norm is not None:
            obs = self.obs_norm(obs, update=False).to(obs.device)
        if self.greedy:
            return self.policy.greedy(obs)
        return self.policy.sample(obs, generator)

    def to_env(self, action):
        return self.policy.to_env(action)


def evaluate(
    checkpoint: str | os.PathLike,
    *,
    episodes: int = 10,
    seed: int = 0,
    greedy: bool = False,
    env_id: str | None = None,
    num_envs: int = 8,
    device: str = "cpu",
) -> dict:
    """Run ``episodes`` episodes of the checkpoint's policy; returns returns, lengths and summary.

    ``env_id``, when given, must match the environment the checkpoint was trained on.
    """
    state = load_checkpoint(checkpoint)
    cfg = state["config"]
    if env_id is not None and env_id != state["env_id"]:
        raise CheckpointError(
            f"the checkpoint {checkpoint} holds a policy for {state['env_id']}, not {env_id}: "
            f"their observation/action spaces differ. Fix: evaluate on {state['env_id']}, or "
            f"train a policy for {env_id}."
        )
    envs, horizon = make_envs(state["env_id"], min(num_envs, episodes), cfg.get("max_steps"))
    signature = f"{envs.single_observation_space!r} -> {envs.single_action_space!r}"
    if signature != state["spaces"]:
        raise CheckpointError(
            f"{state['env_id']} now has spaces {signature}, but the checkpoint was trained with "
            f"{state['spaces']}. Fix: use the gymnasium version the checkpoint was made with."
        )
    config = TrainConfig.from_dict(cfg)
    policy = policy_for(config, envs)
    policy.load_state_dict(state["agent"]["policy"])
    policy.to(device).eval()
    if policy.uses_memory and not greedy:
        raise ScoregradError(
            "this policy's exploration noise is correlated in time (noise_corr > 0), which "
            "whole-episode evaluation does not carry. Fix: evaluate with greedy=True (--greedy)."
        )
    obs_norm = None
    if config.normalize_obs:
        obs_norm = ObsNormalizer(envs.single_observation_space.shape)
        obs_norm.load_state_dict(state["collector"]["obs_norm"])
    actor = _Actor(policy, obs_norm, greedy)
    g = torch.Generator(device=device).manual_seed(seed)
    seeds = [int(s) for s in np.random.default_rng(seed).integers(0, 2**31 - 1, envs.num_envs)]
    batch = collect(envs, actor, episodes, horizon, g, seeds, device)
    envs.close()
    r = batch.returns.numpy()
    return {
        "env_id": state["env_id"],
        "episodes": episodes,
        "greedy": greedy,
        "returns": r.tolist(),
        "lengths": batch.lengths.tolist(),
        "mean": float(r.mean()),
        "std": float(r.std(ddof=1)) if len(r) > 1 else 0.0,
        "trained_episodes": len(state["returns"]),
    }
