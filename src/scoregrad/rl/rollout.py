"""Collecting batches of whole episodes with Gymnasium vector environments.

``collect(envs, policy, n_episodes, ...)`` runs exactly ``n_episodes`` episodes on a
``gymnasium.vector.VectorEnv`` with k ≤ n sub-environments. Episode j is started by the first
sub-environment that becomes free, and the batch ends only when every one of the n episodes has
ended, so short episodes are not favoured (no selection bias in the batch).

Gymnasium ≥ 1.0 vector environments auto-reset in "next-step" mode: the ``step`` *after* an
episode terminates or truncates ignores its action, resets that sub-environment and returns the
new episode's first observation with reward 0. That step belongs to no episode and is masked out;
so are the steps of sub-environments that have no episode left to run.

All sub-environments are reset at the start of each batch with seeds drawn from a NumPy
``Generator``, so a batch is a deterministic function of (policy, torch generator state, NumPy
generator state): checkpoints need no environment internals to resume exactly.
"""

from __future__ import annotations

import difflib
import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from ..errors import FunctionOutputError, ScoregradError

__all__ = [
    "Batch",
    "collect",
    "make_envs",
    "check_env_id",
    "UnknownEnvironmentError",
    "MissingEnvironmentDependency",
    "NonFiniteRewardError",
    "DEFAULT_MAX_STEPS",
]

#: Gymnasium extras that scoregrad also declares as its own (pyproject's optional dependencies)
SCOREGRAD_EXTRAS = ("box2d",)

#: episode cap for environments registered without a time limit
DEFAULT_MAX_STEPS = 1000


class UnknownEnvironmentError(ScoregradError):
    """The environment id is not in Gymnasium's registry."""


class NonFiniteRewardError(FunctionOutputError):
    """The environment returned a NaN or infinite reward."""


def check_env_id(env_id: str) -> None:
    """Raise ``UnknownEnvironmentError`` with close matches when ``env_id`` is not registered."""
    if env_id in gym.registry:
        return
    names = list(gym.registry.keys())
    close = difflib.get_close_matches(env_id, names, n=5, cutoff=0.5)
    if not close:  # try ignoring case and version suffix
        lowered = {n.lower(): n for n in names}
        close = [lowered[c] for c in difflib.get_close_matches(env_id.lower(), lowered, n=5)]
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownEnvironmentError(
        f"unknown Gymnasium environment {env_id!r}.{hint} Fix: pass a registered id (list them "
        'with `python -c "import gymnasium; gymnasium.pprint_registry()"`), or import the '
        "package that registers it first."
    )


def make_envs(
    env_id: str, num_envs: int, max_steps: int | None = None, **kwargs
) -> tuple[gym.vector.VectorEnv, int]:
    """A synchronous vector env of ``num_envs`` copies and its per-episode step cap T.

    Environments without a registered time limit get one of ``max_steps`` (default
    ``DEFAULT_MAX_STEPS``); ``max_steps`` also overrides a registered limit.
    """
    check_env_id(env_id)
    spec = gym.spec(env_id)
    limit = max_steps if max_steps is not None else spec.max_episode_steps
    if limit is None:
        limit = DEFAULT_MAX_STEPS
    try:
        envs = gym.make_vec(
            env_id, num_envs=num_envs, vectorization_mode="sync", max_episode_steps=int(limit),
            **kwargs,
        )  # fmt: skip
    except (gym.error.DependencyNotInstalled, ModuleNotFoundError, ImportError) as e:
        raise MissingEnvironmentDependency(env_id, spec, e) from None
    return envs, int(limit)


class MissingEnvironmentDependency(ScoregradError):
    """The environment needs an optional package (e.g. box2d for LunarLander) that is missing."""

    def __init__(self, env_id: str, spec, error: Exception):
        entry = spec.entry_point if isinstance(spec.entry_point, str) else ""
        parts = entry.split(":")[0].split(".")
        # Gymnasium's own environments live in gymnasium.envs.<extra>.<module>
        extra = parts[2] if len(parts) > 3 and parts[:2] == ["gymnasium", "envs"] else None
        fix = (
            f'pip install "gymnasium[{extra}]"'
            if extra
            else f"install the package that provides {entry or env_id}"
        )
        if extra in SCOREGRAD_EXTRAS:
            fix = f'pip install "scoregrad[{extra}]" (or "gymnasium[{extra}]")'

        reason = " ".join(str(error).split())
        super().__init__(
            f"{env_id} needs an optional dependency that is not installed ({reason}). Fix: {fix}."
        )


@dataclass
class Batch:
    """n episodes, time-aligned and padded to T steps (see ``scoregrad.rl.returns``).

    ``obs`` (n, T, *obs_shape), ``actions`` (n, T, *action_shape), ``rewards`` (n, T),
    ``mask`` (n, T) bool, ``lengths`` (n,), ``returns`` (n,) undiscounted episode returns,
    ``terminated`` (n,) bool (False: truncated by a time limit), ``env_steps`` = mask.sum(),
    ``seconds`` of wall time.
    """

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor
    returns: torch.Tensor
    terminated: torch.Tensor
    env_steps: int
    seconds: float

    def to(self, device) -> Batch:
        move = lambda t: t.to(device)
        return Batch(
            move(self.obs), move(self.actions), move(self.rewards), move(self.mask),
            self.lengths, self.returns, self.terminated, self.env_steps, self.seconds,
        )  # fmt: skip


def collect(
    envs: gym.vector.VectorEnv,
    policy,
    n_episodes: int,
    max_steps: int,
    generator: torch.Generator,
    seeds: list[int] | None = None,
    device: torch.device | str = "cpu",
) -> Batch:
    """Run ``n_episodes`` complete episodes with ``policy`` (see the module docstring)."""
    start = time.perf_counter()
    k = envs.num_envs
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be at least 1, got {n_episodes}.")
    obs_space = envs.single_observation_space
    T = int(max_steps)
    obs_np, _ = envs.reset(seed=seeds)
    # padding holds a valid observation (masked out later): zeros may lie outside the space, e.g.
    # a Discrete space whose start is not 0, which the policy's one-hot encoder rejects
    first = np.asarray(obs_np)[0]
    obs_buf = np.empty((n_episodes, T, *obs_space.shape), dtype=first.dtype)
    obs_buf[...] = first
    act_buf = None
    rew_buf = np.zeros((n_episodes, T), dtype=np.float64)
    mask = np.zeros((n_episodes, T), dtype=bool)
    lengths = np.zeros(n_episodes, dtype=np.int64)
    terminated = np.zeros(n_episodes, dtype=bool)
    finished = np.zeros(n_episodes, dtype=bool)

    env_ep = np.where(np.arange(k) < n_episodes, np.arange(k), -1)  # episode each env runs
    env_t = np.zeros(k, dtype=np.int64)
    next_ep = min(k, n_episodes)
    resetting = np.zeros(k, dtype=bool)  # this step is the auto-reset step: masked
    while not finished.all():
        obs_t = torch.as_tensor(np.asarray(obs_np), device=device)
        action = policy.sample(obs_t, generator).cpu()
        if act_buf is None:
            act_buf = torch.zeros((n_episodes, T, *action.shape[1:]), dtype=action.dtype)
        active = (env_ep >= 0) & ~resetting
        idx = np.nonzero(active)[0]
        ep, t = env_ep[idx], env_t[idx]
        obs_buf[ep, t] = np.asarray(obs_np)[idx]
        act_buf[torch.as_tensor(ep), torch.as_tensor(t)] = action[torch.as_tensor(idx)]
        obs_np, reward, term, trunc, _ = envs.step(policy.to_env(action))
        reward = np.asarray(reward, dtype=np.float64)
        if not np.isfinite(reward[idx]).all():
            bad = idx[~np.isfinite(reward[idx])][0]
            raise NonFiniteRewardError(
                f"the environment returned a non-finite reward ({reward[bad]}) at step "
                f"{env_t[bad]} of episode {env_ep[bad]}. Fix: clip or repair the reward in a "
                "wrapper (e.g. gymnasium.wrappers.TransformReward) before training on it."
            )
        rew_buf[ep, t] = reward[idx]
        mask[ep, t] = True
        env_t[idx] += 1
        done = np.asarray(term | trunc)
        ended = idx[done[idx]]
        over = idx[~done[idx] & (env_t[idx] >= T)]
        if len(over):
            raise ScoregradError(
                f"an episode ran past the step cap T={T} without the environment ending it. Fix: "
                "create the vector env with max_episode_steps=T (scoregrad.rl.make_envs does)."
            )
        e = env_ep[ended]
        finished[e], lengths[e], terminated[e] = True, env_t[ended], np.asarray(term)[ended]
        # next step of an ended sub-env is Gymnasium's auto-reset step; it may start a new episode
        resetting[:] = False
        resetting[ended] = True
        n_new = min(len(ended), n_episodes - next_ep)
        env_ep[ended[:n_new]] = np.arange(next_ep, next_ep + n_new)
        env_ep[ended[n_new:]] = -1
        env_t[ended] = 0
        next_ep += n_new
    used = int(lengths.max())
    rewards = torch.as_tensor(rew_buf[:, :used], dtype=torch.float32)
    m = torch.as_tensor(mask[:, :used])
    return Batch(
        obs=torch.as_tensor(obs_buf[:, :used]),
        actions=act_buf[:, :used],
        rewards=rewards,
        mask=m,
        lengths=torch.as_tensor(lengths),
        returns=torch.as_tensor(rew_buf.sum(1)),
        terminated=torch.as_tensor(terminated),
        env_steps=int(lengths.sum()),
        seconds=time.perf_counter() - start,
    )
