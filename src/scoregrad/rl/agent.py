"""REINFORCE with reward-to-go and the core library's baselines, on batches of episodes.

For a batch of n episodes (time-aligned, see ``scoregrad.rl.returns``) the gradient estimate is

    ĝ = (1/n) Σ_i Σ_t ∇θ log π_θ(a_it | s_it) (G_it - b_it),   G_it = Σ_{k≥t} γ^{k-t} r_ik

(Williams 1992; Sutton & Barto 2018, §13.3-13.4). It is written as a DiCE surrogate
(``scoregrad.magic_box``) whose backward pass deposits ĝ on the policy's parameters. Any b_it that
does not depend on episode i's actions from step t on keeps ĝ unbiased. The baselines are the
core's ``scoregrad.baselines`` applied to returns:

* ``"none"``: ``NoBaseline``: b = 0.
* ``"moving-average"``: ``MovingAverage`` per time step over earlier batches, of G_t and of the "still
  running" indicator; b_t is their ratio, i.e. the average return-to-go from step t of episodes
  still running at t (Williams' reinforcement comparison).
* ``"loo"``: ``LeaveOneOut`` across the episodes of the batch, time-aligned (RLOO; Kool et al.
  2019): b_it = Σ_{j≠i} G_jt / #{j≠i running at t}. Needs n ≥ 2.
* ``"value"``: ``Learned`` with the state as context: a value network V(s) fitted by least squares
  to the returns after each batch (the "REINFORCE with baseline" of Sutton & Barto §13.4).

Options that trade bias for variance are off by default and reported as such: advantage
normalisation (subtracts the batch mean, which includes the episode's own return, and divides by
the batch standard deviation: a data-dependent step size), an entropy bonus (changes the
objective) and gradient-norm clipping.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import baselines as B
from ..app.names import Names
from ..dice import magic_box
from ..errors import SampleSizeError
from .policies import mlp
from .returns import normalize, reward_to_go
from .rollout import Batch

__all__ = [
    "ReturnBaseline",
    "ValueNet",
    "make_baseline",
    "REINFORCE",
    "BASELINES",
    "BASELINE_NAMES",
]

#: the baselines' names, spelled one way everywhere (``ma`` is an old spelling of
#: ``moving-average``)
BASELINE_NAMES = Names(
    "baseline", ("none", "moving-average", "loo", "value"), {"ma": "moving-average"}
)
BASELINES = tuple(BASELINE_NAMES)


class ReturnBaseline:
    """Adapter from a core baseline to (n, T) returns with a running mask and states."""

    name = "none"

    def __init__(self):
        self.core = B.NoBaseline()

    def __call__(self, G: torch.Tensor, mask: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        return self.core(G)

    def update(self, G, mask, obs) -> None:
        self.core.update(G)

    def state_dict(self) -> dict:
        return {"core": self.core.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.core.load_state_dict(state["core"])

    def parameters(self):
        return []


def _ratio(num, den):
    return torch.where(den > 0, num / den.clamp_min(1e-12), torch.zeros_like(num))


class MovingAverageBaseline(ReturnBaseline):
    name = "moving-average"

    def __init__(self, horizon: int, decay: float = 0.9):
        self.horizon = int(horizon)
        self.core = B.MovingAverage(decay)
        self.running = B.MovingAverage(decay)

    def _pad(self, x):
        return nn.functional.pad(x.float(), (0, self.horizon - x.shape[1]))

    def __call__(self, G, mask, obs):
        T = G.shape[1]
        num = self.core(self._pad(G))[:, :T]
        den = self.running(self._pad(mask))[:, :T]
        return _ratio(num, den).to(G)

    def update(self, G, mask, obs):
        self.core.update(self._pad(G))
        self.running.update(self._pad(mask))

    def state_dict(self):
        return {"core": self.core.state_dict(), "running": self.running.state_dict()}

    def load_state_dict(self, state):
        self.core.load_state_dict(state["core"])
        self.running.load_state_dict(state["running"])


class LeaveOneOutBaseline(ReturnBaseline):
    name = "loo"

    def __init__(self):
        self.core = B.LeaveOneOut()

    def __call__(self, G, mask, obs):
        if G.shape[0] < 2:
            raise SampleSizeError(
                "the leave-one-out (RLOO) baseline needs at least 2 episodes per batch, got "
                f"{G.shape[0]}. Fix: raise the batch size (--batch-episodes) or use "
                "baseline='moving-average' or 'value'."
            )
        return _ratio(self.core(G), self.core(mask.to(G.dtype)))


class ValueBaseline(ReturnBaseline):
    """V(s) fitted with the core's ``Learned`` on returns divided by a fixed scale.

    The scale (mean |G| of the first batch it learns from) is set once, at the first update, so
    the regression targets are O(1) whatever the reward units; b for an episode never depends on
    that episode's own returns, because the network is only fitted after b is used.
    """

    name = "value"

    def __init__(self, model: nn.Module, lr: float = 1e-2, steps: int = 5):
        self.model = model
        self.core = B.Learned(model=model, lr=lr, steps_per_update=steps)
        self.scale: float | None = None

    def __call__(self, G, mask, obs):
        b = torch.zeros_like(G)
        s = self.scale if self.scale is not None else 1.0
        b[mask] = self.core(G[mask], context=obs[mask]) * s
        return b

    def update(self, G, mask, obs):
        if self.scale is None:
            self.scale = max(float(G[mask].abs().mean()), 1e-6)
        self.core.update(G[mask] / self.scale, context=obs[mask])

    def state_dict(self):
        return {"core": self.core.state_dict(), "scale": self.scale}

    def load_state_dict(self, state):
        self.core.load_state_dict(state["core"])
        self.scale = state["scale"]

    def parameters(self):
        return list(self.model.parameters())


class ValueNet(nn.Module):
    """V(s): the policy's observation encoder then an MLP to one number."""

    def __init__(self, encoder: nn.Module, hidden=(64,)):
        super().__init__()
        self.encoder = encoder
        self.net = mlp([encoder.dim, *hidden, 1])

    def forward(self, obs):
        return self.net(self.encoder(obs).to(self.net[0].weight.dtype)).squeeze(-1)


def make_baseline(
    name: str,
    *,
    horizon: int,
    encoder: nn.Module | None = None,
    decay: float = 0.9,
    value_lr: float = 1e-2,
    value_steps: int = 5,
    value_hidden=(64,),
) -> ReturnBaseline:
    """One of ``BASELINES`` for returns of episodes up to ``horizon`` steps."""
    name = BASELINE_NAMES.resolve(name)
    if name == "none":
        return ReturnBaseline()
    if name == "moving-average":
        return MovingAverageBaseline(horizon, decay)
    if name == "loo":
        return LeaveOneOutBaseline()
    if name == "value":
        if encoder is None:
            raise ValueError("the value baseline needs the policy's observation encoder.")
        import copy

        return ValueBaseline(ValueNet(copy.deepcopy(encoder), value_hidden), value_lr, value_steps)
    raise AssertionError(name)  # pragma: no cover - BASELINE_NAMES lists every name above


def training_biases(normalize_advantages: bool, entropy_coef: float, max_grad_norm) -> list[str]:
    """The biased options both agents share, as ``bias_sources`` reports them."""
    out = ["normalised advantages"] if normalize_advantages else []
    if entropy_coef:
        out.append(f"entropy bonus {entropy_coef}")
    if max_grad_norm is not None:
        out.append(f"gradient clipping at {max_grad_norm}")
    return out


@dataclass
class UpdateStats:
    loss: float
    entropy: float
    grad_norm: float
    mean_abs_advantage: float


class REINFORCE:
    """The estimator and the policy update for a batch of episodes.

    >>> import gymnasium as gym, torch
    >>> from scoregrad.rl import make_policy, make_envs, collect
    >>> envs, T = make_envs("CartPole-v1", 4)
    >>> pi = make_policy(envs.single_observation_space, envs.single_action_space)
    >>> agent = REINFORCE(pi, make_baseline("loo", horizon=T), gamma=0.99)
    >>> batch = collect(envs, pi, 4, T, torch.Generator().manual_seed(0), seeds=[0, 1, 2, 3])
    >>> grads = agent.gradient(batch)          # ĝ on every policy parameter, baseline then updated
    >>> sorted(grads) == sorted(n for n, _ in pi.named_parameters())
    True
    """

    def __init__(
        self,
        policy: nn.Module,
        baseline: ReturnBaseline,
        *,
        gamma: float = 0.99,
        lr: float = 1e-2,
        normalize_advantages: bool = False,
        entropy_coef: float = 0.0,
        max_grad_norm: float | None = None,
    ):
        self.policy, self.baseline, self.gamma = policy, baseline, float(gamma)
        self.normalize_advantages = normalize_advantages
        self.entropy_coef = float(entropy_coef)
        self.max_grad_norm = max_grad_norm
        self.optimizer = torch.optim.Adam(policy.parameters(), lr=lr)

    def bias_sources(self) -> list[str]:
        """The options in force that make ĝ a biased estimate of ∇θ E[return]."""
        out = training_biases(self.normalize_advantages, self.entropy_coef, self.max_grad_norm)
        if self.gamma < 1:
            out.append(f"gamma={self.gamma} < 1 without the gamma^t factor")
        return out

    def advantages(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(G, A): reward-to-go and advantage G - b (normalised if asked), 0 on padding."""
        G = reward_to_go(batch.rewards, batch.mask, self.gamma)
        b = self.baseline(G, batch.mask, batch.obs)
        A = (G - b) * batch.mask
        if self.normalize_advantages:
            # advantages whose spread is round-off of the returns' size carry no signal
            tol = 1e-5 * float(G[batch.mask].abs().max()) if batch.mask.any() else 0.0
            A = normalize(A, batch.mask, tol=tol)
        return G, A.detach()

    def surrogate(self, batch: Batch, A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss to minimise: -(1/n) Σ magic(log π) A - β · mean entropy; and the entropy."""
        dist = self.policy.dist(batch.obs)
        log_prob = dist.log_prob(batch.actions)
        m = batch.mask.to(log_prob.dtype)
        n = batch.mask.shape[0]
        objective = (magic_box(log_prob) * A * m).sum() / n
        entropy = (dist.entropy() * m).sum() / m.sum()
        return -(objective + self.entropy_coef * entropy), entropy.detach()

    def _backward(self, batch: Batch):
        G, A = self.advantages(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss, entropy = self.surrogate(batch, A)
        loss.backward()
        return G, A, loss, entropy

    def gradient(self, batch: Batch, update_baseline: bool = True) -> dict[str, torch.Tensor]:
        """ĝ (the ascent direction of E[return]) for this batch, without stepping the policy.

        The loss minimised by ``update`` is the negated surrogate, so ĝ = -(its gradient).
        """
        G, _, _, _ = self._backward(batch)
        grads = {
            k: (-p.grad.detach() if p.grad is not None else torch.zeros_like(p))
            for k, p in self.policy.named_parameters()
        }
        if update_baseline:
            self.baseline.update(G, batch.mask, batch.obs)
        return grads

    def update(self, batch: Batch) -> UpdateStats:
        """One Adam step along ĝ (after optional clipping), then the baseline learns."""
        G, A, loss, entropy = self._backward(batch)
        params = [p for p in self.policy.parameters() if p.grad is not None]
        max_norm = self.max_grad_norm if self.max_grad_norm is not None else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        self.optimizer.step()
        self.baseline.update(G, batch.mask, batch.obs)
        m = batch.mask
        return UpdateStats(
            loss=float(loss.detach()),
            entropy=float(entropy),
            grad_norm=float(norm),
            mean_abs_advantage=float(A.abs()[m].mean()),
        )

    def state_dict(self) -> dict:
        return {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "baseline": self.baseline.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline.load_state_dict(state["baseline"])
