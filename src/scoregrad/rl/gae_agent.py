"""The score-function estimator on step-based batches: GAE(λ) advantages, a learned value.

For a ``StepBatch`` of T steps on k sub-environments the policy-gradient estimate is

    ĝ = (1/Tk) Σ_{t,i} ∇θ log π_θ(u_ti | h_ti) Â_ti,      Â = GAE(λ) with the learned V

(``scoregrad.rl.advantages.gae``): V is the control variate of the likelihood ratio. After the
batch, V is fitted by least squares to the λ-returns Â + V. With ``epochs`` > 1 the batch is reused
for several gradient steps (``minibatches`` per pass), reweighted by a surrogate of
``scoregrad.rl.surrogates``.

Biased options, each declared by ``bias_sources`` (and measured in tests/rl/test_bias.py):
λ < 1 and cuts bootstrapped with V (exact only if V = V^π), epochs > 1 (the state distribution is
the behaviour policy's), the PPO-clip and V-trace surrogates, advantage normalisation (batch
statistics include the step's own advantage, and the std is a data-dependent step size), reward
normalisation (a drifting scale), an entropy bonus and gradient clipping.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .advantages import gae
from .agent import training_biases
from .steps import StepBatch
from .surrogates import Surrogate

__all__ = ["GAEReinforce", "StepStats"]


@dataclass
class StepStats:
    loss: float
    entropy: float
    grad_norm: float
    value_loss: float
    approx_kl: float


class GAEReinforce:
    """Policy and value updates for step batches (see the module docstring)."""

    def __init__(
        self,
        policy: nn.Module,
        value: nn.Module,
        surrogate: Surrogate,
        *,
        gamma: float = 0.99,
        lam: float = 0.95,
        lr: float = 3e-4,
        value_lr: float = 1e-3,
        epochs: int = 1,
        minibatches: int = 1,
        normalize_advantages: bool = False,
        entropy_coef: float = 0.0,
        max_grad_norm: float | None = None,
    ):
        self.policy, self.value, self.surrogate = policy, value, surrogate
        self.gamma, self.lam = float(gamma), float(lam)
        self.epochs, self.minibatches = int(epochs), int(minibatches)
        self.normalize_advantages = bool(normalize_advantages)
        self.entropy_coef = float(entropy_coef)
        self.max_grad_norm = max_grad_norm
        self.optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
        self.value_optimizer = torch.optim.Adam(value.parameters(), lr=value_lr)

    def bias_sources(self) -> list[str]:
        """The options in force that make ĝ a biased estimate of ∇θ E[return]."""
        out = ["episodes cut at batch ends are bootstrapped with V"]
        if self.lam < 1:
            out.append(f"GAE lambda={self.lam} < 1")
        if self.epochs > 1 or self.minibatches > 1:
            out.append(f"{self.epochs} epochs x {self.minibatches} minibatches per batch")
        if self.surrogate.biased:
            out.append(f"surrogate {self.surrogate.name}")
        return out + training_biases(
            self.normalize_advantages, self.entropy_coef, self.max_grad_norm
        )

    def advantages(self, batch: StepBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(Â, λ-return targets), both (T, k), detached."""
        with torch.no_grad():
            v = self.value(batch.obs)
            v_last = self.value(batch.last_obs)
            v_boot = self.value(batch.bootstrap_obs)
            next_v = torch.cat([v[1:], v_last.unsqueeze(0)])
            next_v = torch.where(batch.ended, v_boot, next_v)
            A = gae(batch.rewards, v, next_v, batch.terminated, batch.ended,
                    gamma=self.gamma, lam=self.lam)  # fmt: skip
        return A, A + v

    def _log_prob(self, obs, actions, memory):
        dist = self.policy.dist(obs, memory)
        return dist.log_prob(actions), dist

    def _flat_memory(self, batch: StepBatch, idx=None):
        if batch.memory is None:
            return None
        flat = [m.reshape(-1, *m.shape[2:]) for m in batch.memory]
        return tuple(m if idx is None else m[idx] for m in flat)

    def loss(self, batch: StepBatch, A: torch.Tensor, log_prob_old: torch.Tensor, idx=None):
        """Negated surrogate on the rows ``idx`` of the flattened batch; and the entropy."""
        obs, actions = batch.flat("obs"), batch.flat("actions")
        if idx is not None:
            obs, actions, A, log_prob_old = obs[idx], actions[idx], A[idx], log_prob_old[idx]
        log_prob, dist = self._log_prob(obs, actions, self._flat_memory(batch, idx))
        if self.normalize_advantages and A.numel() > 1:
            A = (A - A.mean()) / (A.std() + 1e-8)
        log_ratio = log_prob - log_prob_old
        objective = self.surrogate.objective(log_ratio, A).mean()
        entropy = dist.entropy().mean()
        return -(objective + self.entropy_coef * entropy), entropy.detach(), log_ratio.detach()

    def gradient(self, batch: StepBatch) -> dict[str, torch.Tensor]:
        """ĝ of the first gradient step (θ = θ_old) on every policy parameter; nothing updated."""
        A, _ = self.advantages(batch)
        with torch.no_grad():
            old = self._log_prob(
                batch.flat("obs"), batch.flat("actions"), self._flat_memory(batch)
            )[0]
        self.policy.zero_grad(set_to_none=True)
        self.loss(batch, A.reshape(-1), old)[0].backward()
        return {
            k: (-p.grad.detach() if p.grad is not None else torch.zeros_like(p))
            for k, p in self.policy.named_parameters()
        }

    def _step(self, optimizer, params, loss) -> float:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in params if p.grad is not None]
        max_norm = self.max_grad_norm if self.max_grad_norm is not None else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        optimizer.step()
        return float(norm)

    def update(self, batch: StepBatch, generator: torch.Generator) -> StepStats:
        """``epochs`` passes over the batch in ``minibatches`` shuffled with ``generator``."""
        A, targets = self.advantages(batch)
        A, targets = A.reshape(-1), targets.reshape(-1)
        obs = batch.flat("obs")
        with torch.no_grad():
            old = self._log_prob(obs, batch.flat("actions"), self._flat_memory(batch))[0]
        n = A.shape[0]
        size = -(-n // self.minibatches)
        losses, entropies, norms, vlosses, kls = [], [], [], [], []
        for _ in range(self.epochs):
            order = torch.randperm(n, generator=generator, device=generator.device).to(A.device)
            for idx in order.split(size):
                loss, entropy, log_ratio = self.loss(batch, A, old, idx)
                norms.append(self._step(self.optimizer, self.policy.parameters(), loss))
                vloss = (self.value(obs[idx]) - targets[idx]).pow(2).mean()
                self._step(self.value_optimizer, self.value.parameters(), vloss)
                losses.append(float(loss.detach())), entropies.append(float(entropy))
                vlosses.append(float(vloss.detach()))
                kls.append(float((log_ratio.exp() - 1 - log_ratio).mean()))  # KL(old||new) est.
        mean = lambda x: sum(x) / len(x)
        return StepStats(mean(losses), mean(entropies), mean(norms), mean(vlosses), mean(kls))

    def state_dict(self) -> dict:
        return {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "value": self.value.state_dict(),
            "value_optimizer": self.value_optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.value.load_state_dict(state["value"])
        self.value_optimizer.load_state_dict(state["value_optimizer"])
