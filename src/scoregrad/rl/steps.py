"""Step-based batches: n steps on each of k sub-environments, episodes cut and carried over.

``StepCollector`` keeps its sub-environments running across batches (long episodes such as
MountainCar's 999 steps span several updates). Each batch holds (T = n_steps, k) arrays, time
first, of what the policy saw and did, the rewards, and where episodes ended (terminated, or
truncated by the time limit); ``bootstrap_obs`` holds the final observation of an episode that
ended at a step, and ``last_obs`` the observation after the batch, for the value bootstraps of
``scoregrad.rl.advantages.gae``.

The vector env runs with Gymnasium's autoreset disabled: an ended sub-environment is reset at
once, with a seed drawn from the collector's NumPy generator, so no step is wasted or needs a
mask. That also makes checkpoints exact without saving environment internals: the state holds
each sub-environment's episode seed and the actions of its current episode, and
``load_state_dict`` replays them (a deterministic environment returns to the same state; the
replayed observation is checked against the saved one, and a mismatch raises
``CheckpointError``).

Observations go through an optional ``ObsNormalizer`` as they arrive, rewards through an optional
``RewardScaler``; both are part of the collector's state. Episode returns are reported raw.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from ..app.checkpoint import CheckpointError
from .normalize import ObsNormalizer, RewardScaler
from .rollout import NonFiniteRewardError, make_envs

__all__ = ["StepBatch", "StepCollector", "make_step_envs"]


def make_step_envs(env_id: str, num_envs: int, max_steps: int | None = None):
    """``make_envs`` with autoreset disabled (the collector resets ended sub-environments)."""
    from gymnasium.vector import AutoresetMode

    return make_envs(
        env_id, num_envs, max_steps, vector_kwargs={"autoreset_mode": AutoresetMode.DISABLED}
    )


@dataclass
class StepBatch:
    """(T, k) arrays of one step-based batch (see the module docstring).

    ``memory`` is (previous observation, previous action, whether there is one) per step, for
    policies whose noise is correlated in time (``GaussianPolicy(noise_corr=ρ)``), else None.
    ``episode_returns``/``episode_lengths``: the episodes that ended in this batch (raw returns).
    """

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    terminated: torch.Tensor
    ended: torch.Tensor
    bootstrap_obs: torch.Tensor
    last_obs: torch.Tensor
    memory: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None
    episode_returns: list[float]
    episode_lengths: list[int]
    env_steps: int
    seconds: float

    def flat(self, name: str) -> torch.Tensor:
        """A (T, k, ...) field as (T·k, ...)."""
        x = getattr(self, name)
        return x.reshape(-1, *x.shape[2:])


class StepCollector:
    """Runs ``policy`` on the sub-environments of ``envs`` (autoreset disabled), n steps a batch."""

    def __init__(
        self,
        envs: gym.vector.VectorEnv,
        rng: np.random.Generator,
        *,
        normalize_obs: bool = False,
        normalize_reward: bool = False,
        gamma: float = 0.99,
        device: torch.device | str = "cpu",
    ):
        self.envs, self.rng, self.device = envs, rng, torch.device(device)
        k = envs.num_envs
        space = envs.single_observation_space
        self.obs_norm = ObsNormalizer(space.shape) if normalize_obs else None
        self.reward_scaler = RewardScaler(k, gamma) if normalize_reward else None
        self.seeds = [0] * k
        self.history: list[list[np.ndarray]] = [[] for _ in range(k)]
        self.ep_return = np.zeros(k)
        self.ep_length = np.zeros(k, dtype=np.int64)
        self.raw_obs: np.ndarray | None = None
        self.obs: torch.Tensor | None = None
        self.prev: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    # -- observations --------------------------------------------------------------------------
    def _seed(self) -> int:
        return int(self.rng.integers(0, 2**31 - 1))

    def _encode(self, raw: np.ndarray, update: bool) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(raw))
        if self.obs_norm is not None:
            x = self.obs_norm(x, update=update)
        return x.to(self.device)

    def _start(self) -> None:
        self.seeds = [self._seed() for _ in range(self.envs.num_envs)]
        raw, _ = self.envs.reset(seed=self.seeds)
        self.raw_obs = np.array(raw)
        self.obs = self._encode(raw, update=True)

    # -- collection ----------------------------------------------------------------------------
    def collect(self, policy, n_steps: int, generator: torch.Generator) -> StepBatch:
        """``n_steps`` steps on every sub-environment with ``policy``'s sampled actions."""
        start = time.perf_counter()
        if self.obs is None:
            self._start()
        k, T = self.envs.num_envs, int(n_steps)
        remember = policy.uses_memory
        if remember and self.prev is None:
            self.prev = self._no_memory(policy)
        obs, acts, rews, terms, ends, boots, mems = [], [], [], [], [], [], []
        done_returns, done_lengths = [], []
        for _ in range(T):
            o = self.obs
            mem = self.prev if remember else None
            u = policy.sample(o, generator, mem)
            env_action = policy.to_env(u)
            raw, reward, term, trunc, _ = self.envs.step(env_action)
            reward = np.asarray(reward, dtype=np.float64)
            if not np.isfinite(reward).all():
                i = int(np.nonzero(~np.isfinite(reward))[0][0])
                raise NonFiniteRewardError(
                    f"the environment returned a non-finite reward ({reward[i]}) at step "
                    f"{self.ep_length[i]} of an episode on sub-environment {i}. Fix: clip or "
                    "repair the reward in a wrapper (e.g. gymnasium.wrappers.TransformReward)."
                )
            term, ended = np.asarray(term, bool), np.asarray(term | trunc, bool)
            for i in range(k):
                self.history[i].append(np.array(env_action[i]))
            self.ep_return += reward
            self.ep_length += 1
            boot = o.clone()
            if ended.any():
                idx = np.nonzero(ended)[0]
                boot[torch.as_tensor(idx)] = self._encode(np.asarray(raw)[idx], update=False)
                done_returns += [float(x) for x in self.ep_return[idx]]
                done_lengths += [int(x) for x in self.ep_length[idx]]
                new = [None] * k
                for i in idx:
                    self.seeds[i] = new[i] = self._seed()
                    self.history[i] = []
                self.ep_return[idx], self.ep_length[idx] = 0.0, 0
                raw, _ = self.envs.reset(seed=new, options={"reset_mask": ended})
            r = torch.as_tensor(reward, dtype=torch.float32)
            if self.reward_scaler is not None:
                r = self.reward_scaler(torch.as_tensor(reward), torch.as_tensor(ended))
            obs.append(o), acts.append(u), rews.append(r), boots.append(boot)
            terms.append(torch.as_tensor(term)), ends.append(torch.as_tensor(ended))
            if remember:
                mems.append(mem)
                self.prev = (o, u, ~torch.as_tensor(ended, device=self.device))
            self.raw_obs = np.array(raw)
            self.obs = self._encode(raw, update=True)
        memory = None
        if remember:
            memory = tuple(torch.stack([m[j] for m in mems]) for j in range(3))
        return StepBatch(
            obs=torch.stack(obs), actions=torch.stack(acts),
            rewards=torch.stack(rews).to(self.device), terminated=torch.stack(terms).to(self.device),
            ended=torch.stack(ends).to(self.device), bootstrap_obs=torch.stack(boots),
            last_obs=self.obs, memory=memory, episode_returns=done_returns,
            episode_lengths=done_lengths, env_steps=T * k, seconds=time.perf_counter() - start,
        )  # fmt: skip

    def _no_memory(self, policy):
        k, d = self.envs.num_envs, policy.action_dim
        none = torch.zeros(k, dtype=torch.bool, device=self.device)
        return (self.obs, torch.zeros(k, d, device=self.device), none)

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        lengths = [len(h) for h in self.history]
        width = max(lengths, default=0)
        shape = self.envs.single_action_space.shape
        dtype = self.envs.single_action_space.dtype
        actions = np.zeros((len(self.history), width, *shape), dtype=dtype)
        for i, h in enumerate(self.history):
            if h:
                actions[i, : len(h)] = np.stack(h)
        return {
            "started": self.obs is not None,
            "seeds": list(self.seeds),
            "actions": torch.as_tensor(actions),
            "lengths": lengths,
            "ep_return": torch.as_tensor(self.ep_return),
            "raw_obs": None if self.raw_obs is None else torch.as_tensor(self.raw_obs),
            "obs": self.obs,
            "prev": self.prev,
            "obs_norm": None if self.obs_norm is None else self.obs_norm.state_dict(),
            "reward_scaler": None
            if self.reward_scaler is None
            else self.reward_scaler.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore the state and replay each sub-environment's current episode (docstring)."""
        if self.obs_norm is not None:
            self.obs_norm.load_state_dict(state["obs_norm"])
        if self.reward_scaler is not None:
            self.reward_scaler.load_state_dict(state["reward_scaler"])
        if not state["started"]:
            return
        self.seeds = [int(s) for s in state["seeds"]]
        self.ep_return = state["ep_return"].numpy().copy()
        self.ep_length = np.array(state["lengths"], dtype=np.int64)
        actions = state["actions"].numpy()
        self.history = [[actions[i, t] for t in range(n)] for i, n in enumerate(state["lengths"])]
        raw, _ = self.envs.reset(seed=self.seeds)
        raw = np.array(raw)
        for i, h in enumerate(self.history):
            sub = self.envs.envs[i]
            for a in h:
                raw[i] = sub.step(a)[0]
        saved = state["raw_obs"].numpy()
        if not np.array_equal(raw, saved):
            raise CheckpointError(
                "replaying the saved episodes did not bring the environments back to the saved "
                "observations: the environment is not deterministic given its seed and actions, "
                "so this run cannot resume exactly. Fix: start a new run, or use an environment "
                "that is deterministic under reset(seed=...)."
            )
        self.raw_obs = raw
        self.obs = state["obs"].to(self.device)
        self.prev = (
            None if state["prev"] is None else tuple(x.to(self.device) for x in state["prev"])
        )
