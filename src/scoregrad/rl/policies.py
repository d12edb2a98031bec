"""Small torch policies chosen from a Gymnasium environment's spaces.

* ``Discrete(k)`` actions: a ``Categorical`` over k actions with logits from an MLP of the state.
* ``Box`` actions (1-D): a diagonal ``Normal`` whose mean is an MLP of the state and whose
  log-standard-deviation is a learned vector or (``state_std``) a second head of the MLP, as in
  Williams (1992) and Schulman et al. (2015). The draw u is clipped to the box, or squashed by
  tanh, only when stepping the environment; the score is that of u, which is exact (see
  ``GaussianPolicy``), and ``noise_corr`` makes the exploration noise AR(1) within an episode.

Observations may be ``Box`` (flattened) or ``Discrete`` (one-hot encoded). Anything else raises
``UnsupportedSpaceError`` naming the space and the fix (e.g. a flattening wrapper).

Sampling takes an explicit ``torch.Generator`` so that training never touches torch's global RNG
and a checkpoint can hold the generator's state (exact resume).

>>> import gymnasium as gym, torch
>>> env = gym.make("CartPole-v1")
>>> pi = make_policy(env.observation_space, env.action_space, hidden=(16,))
>>> g = torch.Generator().manual_seed(0)
>>> a = pi.sample(torch.zeros(3, 4), g)
>>> a.shape, pi.dist(torch.zeros(3, 4)).log_prob(a).shape
(torch.Size([3]), torch.Size([3]))
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.distributions as D
from gymnasium import spaces
from torch import nn

from ..errors import ScoregradError


class IgnoredOptionWarning(UserWarning):
    """An option that does not apply to this environment's actions, and so has no effect."""


__all__ = [
    "IgnoredOptionWarning",
    "UnsupportedSpaceError",
    "ObservationEncoder",
    "CategoricalPolicy",
    "GaussianPolicy",
    "make_policy",
    "mlp",
    "SQUASHES",
]

#: how a Gaussian draw u becomes the environment's action
SQUASHES = ("clip", "tanh")
#: bounds of a state-dependent log-std (keeps σ away from 0 and from overflow)
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


class UnsupportedSpaceError(ScoregradError):
    """The environment's observation or action space is one the policies cannot handle."""


def mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.Tanh) -> nn.Sequential:
    """Linear layers of the given sizes with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class ObservationEncoder(nn.Module):
    """Raw observations to float features: Box → flattened, Discrete → one-hot."""

    def __init__(self, space: spaces.Space):
        super().__init__()
        if isinstance(space, spaces.Box):
            self.kind, self.dim = "box", int(np.prod(space.shape))
            self.event_dims = len(space.shape)
        elif isinstance(space, spaces.Discrete):
            self.kind, self.dim, self.start = "discrete", int(space.n), int(space.start)
        else:
            raise UnsupportedSpaceError(
                f"observation space {space} is not supported: the policies take Box (flattened) or "
                "Discrete (one-hot) observations. Fix: wrap the environment, e.g. "
                "gymnasium.wrappers.FlattenObservation for Dict/Tuple spaces."
            )

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.kind == "box":
            return obs.reshape(*obs.shape[: obs.dim() - self.event_dims], self.dim).float()
        idx = obs.long() - self.start
        return nn.functional.one_hot(idx, self.dim).float()


class _Policy(nn.Module):
    def __init__(self, observation_space, hidden):
        super().__init__()
        self.encoder = ObservationEncoder(observation_space)
        self.hidden = tuple(int(h) for h in hidden)

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        return self.encoder(obs).to(self.net[0].weight.dtype)  # the network's dtype, any default

    def dist(self, obs: torch.Tensor) -> D.Distribution:  # pragma: no cover - abstract
        raise NotImplementedError

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.dist(obs).log_prob(action)

    def entropy(self, obs: torch.Tensor) -> torch.Tensor:
        return self.dist(obs).entropy()


class CategoricalPolicy(_Policy):
    """π(a|s) = Categorical(logits = MLP(s)) for a ``Discrete`` action space."""

    def __init__(self, observation_space, action_space: spaces.Discrete, hidden=(64,)):
        super().__init__(observation_space, hidden)
        self.n_actions, self.start = int(action_space.n), int(action_space.start)
        self.net = mlp([self.encoder.dim, *self.hidden, self.n_actions])
        with torch.no_grad():  # near-uniform initial policy
            self.net[-1].weight.mul_(0.01)
            self.net[-1].bias.zero_()

    uses_memory = False  # the draws are independent given the state

    def dist(self, obs, memory=None):
        return D.Categorical(logits=self.net(self.features(obs)))

    def greedy(self, obs: torch.Tensor) -> torch.Tensor:
        """The most likely action."""
        with torch.no_grad():
            return self.net(self.features(obs)).argmax(-1)

    def sample(self, obs: torch.Tensor, generator: torch.Generator, memory=None) -> torch.Tensor:
        """Draw a ~ π(·|s) by the inverse CDF with ``generator`` (no global RNG)."""
        with torch.no_grad():
            probs = self.dist(obs).probs
            cdf = probs.cumsum(-1)
            u = torch.rand(probs.shape[:-1] + (1,), generator=generator, device=probs.device)
            u = u.to(cdf.dtype) * cdf[..., -1:]
            return torch.searchsorted(cdf, u).squeeze(-1).clamp_(max=self.n_actions - 1)

    def to_env(self, action: torch.Tensor) -> np.ndarray:
        return action.cpu().numpy().astype(np.int64) + self.start


class GaussianPolicy(_Policy):
    """π(u|s) = Normal(μ(s), σ(s)) for a 1-D ``Box``; the environment gets squash(u).

    * ``state_std``: log σ is a second head of the network (state-dependent exploration);
      otherwise a learned vector (Williams 1992; Schulman et al. 2015).
    * ``squash="clip"``: the environment gets u clipped to the box; ``"tanh"``: it gets
      a = c + h·tanh(u) (c, h the box's centre and half-width), whose density is
      p(a|s) = p(u|s) / Π_j h (1 − tanh² u_j) (change of variables; ``env_log_prob``). Either
      way the stored action is u, and the score ∇θ log p(u|s) is exact: the Jacobian does not
      depend on θ, so the likelihood ratio of the squashed action is the same number.
    * ``noise_corr`` ρ: temporally correlated exploration. The standardised noise
      ε_t = (u_t − μ(s_t)) / σ(s_t) follows an AR(1) process ε_t = ρ ε_{t−1} + √(1−ρ²) ξ_t within
      an episode (ε_0 ~ N(0, 1)), so u_t | history ~ Normal(μ(s_t) + σ(s_t) ρ ε_{t−1},
      σ(s_t) √(1−ρ²)). ``dist(obs, memory)`` is that conditional density, exact, with
      ε_{t−1} recomputed from θ: the estimator stays a likelihood ratio for this (non-Markov)
      policy. ``memory`` = (previous observation, previous u, whether there is one).
    """

    def __init__(
        self,
        observation_space,
        action_space: spaces.Box,
        hidden=(64,),
        log_std=0.0,
        *,
        state_std: bool = False,
        squash: str = "clip",
        noise_corr: float = 0.0,
    ):
        super().__init__(observation_space, hidden)
        if squash not in SQUASHES:
            raise ScoregradError(f"squash must be one of {', '.join(SQUASHES)}, got {squash!r}.")
        if not 0.0 <= noise_corr < 1.0:
            raise ScoregradError(f"noise_corr must lie in [0, 1), got {noise_corr}.")
        self.action_dim = int(np.prod(action_space.shape))
        self.state_std, self.squash, self.noise_corr = bool(state_std), squash, float(noise_corr)
        d = self.action_dim
        self.net = mlp([self.encoder.dim, *self.hidden, d * (2 if self.state_std else 1)])
        with torch.no_grad():
            self.net[-1].weight.mul_(0.01)
            self.net[-1].bias.zero_()
            if self.state_std:
                self.net[-1].bias[d:] = float(log_std)
        if not self.state_std:
            self.log_std = nn.Parameter(torch.full((d,), float(log_std)))
        low = np.broadcast_to(action_space.low, action_space.shape).reshape(-1)
        high = np.broadcast_to(action_space.high, action_space.shape).reshape(-1)
        self.register_buffer("low", torch.tensor(np.array(low), dtype=torch.float32))
        self.register_buffer("high", torch.tensor(np.array(high), dtype=torch.float32))
        self._shape = action_space.shape
        self._dtype = action_space.dtype
        if squash == "tanh" and not np.isfinite(np.concatenate([low, high])).all():
            raise UnsupportedSpaceError(
                f"squash='tanh' needs a bounded action box, got {action_space}. Fix: use "
                "squash='clip'."
            )

    @property
    def uses_memory(self) -> bool:
        """Whether ``dist`` needs the previous step (correlated noise)."""
        return self.noise_corr > 0

    def mean_std(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """μ(s) and σ(s) of the unsquashed action."""
        out = self.net(self.features(obs))
        if self.state_std:
            mean, log_std = out.split(self.action_dim, dim=-1)
            log_std = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)
        else:
            mean, log_std = out, self.log_std.expand_as(out)
        return mean, log_std.exp()

    def conditional(self, obs, memory=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std of u given the state and (with ``noise_corr``) the previous step."""
        mean, std = self.mean_std(obs)
        if self.noise_corr > 0 and memory is not None:
            prev_obs, prev_u, has_prev = memory
            prev_mean, prev_std = self.mean_std(prev_obs)
            eps = (prev_u.to(mean.dtype) - prev_mean) / prev_std
            h = has_prev.to(mean.dtype).unsqueeze(-1)
            rho = self.noise_corr
            mean = mean + h * std * rho * eps
            std = std * (1.0 - h + h * math.sqrt(1.0 - rho**2))
        return mean, std

    def dist(self, obs, memory=None):
        return D.Independent(D.Normal(*self.conditional(obs, memory)), 1)

    def sample(self, obs: torch.Tensor, generator: torch.Generator, memory=None) -> torch.Tensor:
        with torch.no_grad():
            loc, scale = self.conditional(obs, memory)  # no distribution object: one per step
            eps = torch.randn(loc.shape, generator=generator, device=loc.device)
            return loc + scale * eps.to(loc.dtype)

    def greedy(self, obs: torch.Tensor) -> torch.Tensor:
        """The mean μ(s) (the environment gets its squash)."""
        with torch.no_grad():
            return self.mean_std(obs)[0]

    def env_log_prob(self, obs, action, memory=None) -> torch.Tensor:
        """log-density of the action the environment gets (``squash="tanh"``: with the
        change-of-variables term; ``"clip"``: of the unclipped draw, which is what is scored)."""
        log_p = self.dist(obs, memory).log_prob(action)
        if self.squash == "tanh":
            u = action
            log_dtanh = 2.0 * (math.log(2.0) - u - nn.functional.softplus(-2.0 * u))
            half = ((self.high - self.low) / 2).to(u)
            log_p = log_p - (log_dtanh + half.log()).sum(-1)
        return log_p

    def to_env(self, action: torch.Tensor) -> np.ndarray:
        low, high = self.low.to(action), self.high.to(action)
        if self.squash == "tanh":
            a = (low + high) / 2 + (high - low) / 2 * torch.tanh(action)
        else:
            a = torch.maximum(torch.minimum(action, high), low)
        return a.cpu().numpy().reshape(a.shape[0], *self._shape).astype(self._dtype)


def make_policy(
    observation_space: spaces.Space,
    action_space: spaces.Space,
    hidden: Sequence[int] = (64,),
    log_std: float = 0.0,
    **gaussian,
) -> CategoricalPolicy | GaussianPolicy:
    """The policy that fits ``action_space``: Categorical for Discrete, Gaussian for Box.

    ``gaussian`` (``state_std``, ``squash``, ``noise_corr``) configures the Gaussian policy; for
    Discrete actions a Categorical policy has no such choices, and any set away from the
    Gaussian policy's defaults (``log_std`` too) is named in an ``IgnoredOptionWarning``."""
    if isinstance(action_space, spaces.Discrete):
        defaults = inspect.signature(GaussianPolicy.__init__).parameters
        given = {"log_std": log_std, **gaussian}
        ignored = [k for k, v in given.items() if k in defaults and v != defaults[k].default]
        if ignored:
            warnings.warn(
                f"{', '.join(ignored)} {'configures' if len(ignored) == 1 else 'configure'} a "
                f"Gaussian policy; the actions here are "
                f"{action_space} (a Categorical policy), so they are ignored.",
                IgnoredOptionWarning,
                stacklevel=2,
            )
        return CategoricalPolicy(observation_space, action_space, hidden)
    if isinstance(action_space, spaces.Box):
        return GaussianPolicy(observation_space, action_space, hidden, log_std, **gaussian)
    raise UnsupportedSpaceError(
        f"action space {action_space} is not supported: the policies handle Discrete (Categorical) "
        "and Box (Gaussian) actions. Fix: wrap the environment so its actions are Discrete or Box "
        "(e.g. gymnasium.wrappers.FlattenObservation-style adapters for MultiDiscrete/Tuple)."
    )
