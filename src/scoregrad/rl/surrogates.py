"""Surrogates for several gradient steps on one batch: likelihood ratio, PPO-clip, V-trace.

A batch is drawn from the behaviour policy μ = π_θ_old. At the first gradient step θ = θ_old
and every surrogate below has the gradient of REINFORCE, Σ_t ∇θ log π_θ(a_t|s_t) A_t (the DiCE
form of ``scoregrad.magic_box``). Later steps on the same batch reweight by the per-decision
likelihood ratio w_t = π_θ(a_t|s_t) / μ(a_t|s_t), and each surrogate treats it differently:

* ``LikelihoodRatio`` (``"score"``): Σ_t w_t A_t, gradient Σ_t w_t ∇log π_θ A_t. Exact
  importance weights for each decision, but the states were visited under μ, not π_θ: biased
  after the first step, unbiased at it (``biased = False``: the default single step is exact).
* ``PPOClip`` (``"ppo-clip"``, Schulman et al. 2017): Σ_t min(w_t A_t, clip(w_t, 1 ± ε) A_t);
  the gradient vanishes where the ratio has left [1 − ε, 1 + ε] in the advantage's direction.
* ``VTrace`` (``"v-trace"``, Espeholt et al. 2018): the truncated weight min(w_t, ρ̄) in front of
  ∇log π_θ A_t (V-trace's policy-gradient term).

The last two are biased (``biased = True``); their bias against the exact gradient of a tabular
MDP is measured in tests/rl/test_bias.py and reported in docs/rl.md.

>>> import torch
>>> lr = torch.zeros(3, requires_grad=True)          # log w = 0: the first step
>>> A = torch.tensor([1.0, -2.0, 0.5])
>>> [float(s.objective(lr, A).sum().detach()) for s in (LikelihoodRatio(), PPOClip(), VTrace())]
[-0.5, -0.5, 0.0]
"""

from __future__ import annotations

import torch

from ..app.names import Names

__all__ = ["Surrogate", "LikelihoodRatio", "PPOClip", "VTrace", "SURROGATE_NAMES", "make_surrogate"]

SURROGATE_NAMES = Names("surrogate", ("score", "ppo-clip", "v-trace"))


class Surrogate:
    """Per-decision objective to maximise, from log w = log π_θ − log μ and advantages A."""

    name = ""
    biased = False

    def objective(self, log_ratio: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover - abstract

    @classmethod
    def from_settings(cls, clip_range: float, rho_bar: float) -> Surrogate:
        """Built from the run's settings (each surrogate takes the one it uses)."""
        return cls()


class LikelihoodRatio(Surrogate):
    name = "score"

    def objective(self, log_ratio, advantages):
        return log_ratio.exp() * advantages


class PPOClip(Surrogate):
    name = "ppo-clip"
    biased = True

    def __init__(self, clip_range: float = 0.2):
        self.clip_range = float(clip_range)

    @classmethod
    def from_settings(cls, clip_range, rho_bar):
        return cls(clip_range)

    def objective(self, log_ratio, advantages):
        w = log_ratio.exp()
        clipped = w.clamp(1.0 - self.clip_range, 1.0 + self.clip_range)
        return torch.minimum(w * advantages, clipped * advantages)


class VTrace(Surrogate):
    name = "v-trace"
    biased = True

    def __init__(self, rho_bar: float = 1.0):
        self.rho_bar = float(rho_bar)

    @classmethod
    def from_settings(cls, clip_range, rho_bar):
        return cls(rho_bar)

    def objective(self, log_ratio, advantages):
        w = log_ratio.exp().clamp(max=self.rho_bar).detach()
        return w * log_ratio * advantages  # gradient: min(w, ρ̄) ∇log π A; value 0 at θ_old


def make_surrogate(name: str, *, clip_range: float = 0.2, rho_bar: float = 1.0) -> Surrogate:
    """One of ``SURROGATE_NAMES`` with the parameter it uses."""
    by_name = {cls.name: cls for cls in (LikelihoodRatio, PPOClip, VTrace)}
    return by_name[SURROGATE_NAMES.resolve(name)].from_settings(clip_range, rho_bar)
