"""Small torch policies chosen from a Gymnasium environment's spaces.

* ``Discrete(k)`` actions: a ``Categorical`` over k actions with logits from an MLP of the state.
* ``Box`` actions (1-D): a diagonal ``Normal`` whose mean is an MLP of the state and whose
  log-standard-deviation is a learned vector (state independent), as in Williams (1992) and the
  Gaussian policies of Schulman et al. (2015). Actions are clipped to the box only when stepping the
  environment; the log-probability is that of the unclipped draw, so the score is exact.

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

from collections.abc import Sequence

import numpy as np
import torch
import torch.distributions as D
from gymnasium import spaces
from torch import nn

from ..errors import ScoregradError

__all__ = [
    "UnsupportedSpaceError",
    "ObservationEncoder",
    "CategoricalPolicy",
    "GaussianPolicy",
    "make_policy",
    "mlp",
]


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

    def dist(self, obs):
        return D.Categorical(logits=self.net(self.features(obs)))

    def sample(self, obs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
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
    """π(a|s) = Normal(MLP(s), exp(log_std)) with a learned log-std vector, for a 1-D ``Box``."""

    def __init__(self, observation_space, action_space: spaces.Box, hidden=(64,), log_std=0.0):
        super().__init__(observation_space, hidden)
        self.action_dim = int(np.prod(action_space.shape))
        self.net = mlp([self.encoder.dim, *self.hidden, self.action_dim])
        with torch.no_grad():
            self.net[-1].weight.mul_(0.01)
            self.net[-1].bias.zero_()
        self.log_std = nn.Parameter(torch.full((self.action_dim,), float(log_std)))
        low = np.broadcast_to(action_space.low, action_space.shape).reshape(-1)
        high = np.broadcast_to(action_space.high, action_space.shape).reshape(-1)
        self.register_buffer("low", torch.tensor(np.array(low), dtype=torch.float32))
        self.register_buffer("high", torch.tensor(np.array(high), dtype=torch.float32))
        self._shape = action_space.shape
        self._dtype = action_space.dtype

    def dist(self, obs):
        mean = self.net(self.features(obs))
        return D.Independent(D.Normal(mean, self.log_std.exp().expand_as(mean)), 1)

    def sample(self, obs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        with torch.no_grad():
            d = self.dist(obs).base_dist
            eps = torch.randn(d.loc.shape, generator=generator, device=d.loc.device)
            return d.loc + d.scale * eps.to(d.loc.dtype)

    def to_env(self, action: torch.Tensor) -> np.ndarray:
        a = torch.maximum(torch.minimum(action, self.high.to(action)), self.low.to(action))
        return a.cpu().numpy().reshape(a.shape[0], *self._shape).astype(self._dtype)


def make_policy(
    observation_space: spaces.Space,
    action_space: spaces.Space,
    hidden: Sequence[int] = (64,),
    log_std: float = 0.0,
) -> CategoricalPolicy | GaussianPolicy:
    """The policy that fits ``action_space``: Categorical for Discrete, Gaussian for Box."""
    if isinstance(action_space, spaces.Discrete):
        return CategoricalPolicy(observation_space, action_space, hidden)
    if isinstance(action_space, spaces.Box):
        return GaussianPolicy(observation_space, action_space, hidden, log_std)
    raise UnsupportedSpaceError(
        f"action space {action_space} is not supported: the policies handle Discrete (Categorical) "
        "and Box (Gaussian) actions. Fix: wrap the environment so its actions are Discrete or Box "
        "(e.g. gymnasium.wrappers.FlattenObservation-style adapters for MultiDiscrete/Tuple)."
    )
