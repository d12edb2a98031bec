"""Multi-sample objectives: VIMCO, and the leave-one-out (RLOO) score function across K samples.

VIMCO (Mnih & Rezende 2016, "Variational Inference for Monte Carlo Objectives") targets the
log-mean-exp objective of K samples x_1..K ~ q(x; θ), where f returns log-weights l_k = f(x_k)
(in variational inference l_k = log p(y, x_k) - log q(x_k | y)):

    L(θ) = E[ L̂ ],   L̂ = log (1/K) Σ_k exp(l_k)            (the IWAE bound for log-weights).

Its gradient has a pathwise part through f's own graph, Σ_k w̃_k ∇ l_k with w̃ = softmax(l), and a
score part with a per-sample learning signal that uses the other samples as baseline:

    Σ_k (L̂ - L̂_{-k}) ∇θ log q(x_k; θ),   L̂_{-k} = log (1/K) (Σ_{j≠k} e^{l_j} + e^{mean_{j≠k} l_j}),

i.e. l_k is replaced by the geometric mean of the others. L̂_{-k} does not depend on x_k, so the
estimator stays unbiased. Note that VIMCO estimates the gradient of E[L̂], *not* of E[f]:
``estimate_grad(..., estimator=VIMCO(K))`` groups the n samples into n/K independent K-sample
objectives and reports E[L̂] as ``value``. In ``expectation``, the n samples form one group (K = n),
and with ``item_shape`` each item (data point) gets its own K-sample objective, summed over items.

``RLOO`` is the score function with the leave-one-out baseline of Kool, van Hoof & Welling 2019
("Buy 4 REINFORCE samples, get a baseline for free!"): it estimates ∇ E[f] itself.

>>> import torch, scoregrad as sg
>>> from torch.distributions import Normal
>>> mu = torch.tensor(0.0, requires_grad=True)
>>> # E[log mean_K exp(x_k)] for K = 4, x ~ N(mu, 1): its mu-gradient is exactly 1
>>> est = sg.estimate_grad(lambda x: x, lambda mu: Normal(mu, 1.0), {"mu": mu}, n=40_000,
...                        estimator=VIMCO(4), seed=0)
>>> abs(float(est.grad["mu"]) - 1.0) < 4.42 * float(est.stderr["mu"])
True
"""

from __future__ import annotations

import math
from numbers import Integral

import torch

from ..baselines import LeaveOneOut
from ..core.loo import loo_mean
from ..core.model import SampleModel
from ..core.shapes import broadcast_rows
from ..errors import SampleSizeError
from .base import Contributions, Estimator
from .registry import register_estimator
from .score_function import ScoreFunction, score_reason

__all__ = ["VIMCO", "RLOO", "vimco_signals"]


def vimco_signals(log_w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(L̂, signals) for log-weights of shape (K, *items): L̂ (*items) and L̂ - L̂_{-k} (K, *items).

    L̂_{-k} = log (1/K) (Σ_{j≠k} e^{l_j} + e^{mean_{j≠k} l}), with the sum over j ≠ k taken as
    logaddexp of a prefix and a suffix ``logcumsumexp``: O(K) memory and stable when one
    weight dominates (subtracting e^{l_k} from the total would cancel catastrophically there).
    """
    K = log_w.shape[0]
    lw = log_w.detach()
    L_hat = torch.logsumexp(lw, 0) - math.log(K)
    others_mean = loo_mean(lw)  # (K, *items)
    edge = torch.full_like(lw[:1], -math.inf)
    before = torch.cat([edge, torch.logcumsumexp(lw, 0)[:-1]])  # log Σ_{j<k} e^{l_j}
    after = torch.cat([torch.logcumsumexp(lw.flip(0), 0).flip(0)[1:], edge])  # Σ_{j>k}
    L_minus = torch.logaddexp(torch.logaddexp(before, after), others_mean) - math.log(K)
    return L_hat, L_hat.unsqueeze(0) - L_minus


@register_estimator
class VIMCO(Estimator):
    """VIMCO for the K-sample log-mean-exp objective E[log (1/K) Σ_k exp f(x_k)].

    Declares: ``estimates`` is that objective, not E[f]; one unit of n is a sample, and K
    consecutive samples form one objective (``granularity``), which chunks never split. Built on
    ∇θ log q, so not applicable where the support moves with θ.

    Args:
        num_samples: K, the samples per objective for ``estimate_grad`` (n must be a multiple of
            K). ``expectation`` uses its n as K.
    """

    name = "vimco"
    estimates = "E[log mean_K exp f]"
    #: the log-mean-exp objective is nonlinear in f, so where f depends on the parameters (an
    #: ELBO's -log q) its pathwise term Σ_k w̃_k ∇θ f_k does not average out: a door must pass f
    #: with its graph to them (``expectation`` does; ``vi.EstimateGradELBO`` refuses VIMCO)
    needs_f_param_graph = True

    def supports(self, dist) -> str | None:
        return super().supports(dist) or score_reason(dist)

    def __init__(self, num_samples: int | None = None):
        if num_samples is not None and (
            isinstance(num_samples, bool)
            or not isinstance(num_samples, Integral)
            or num_samples < 2
        ):
            raise SampleSizeError(
                f"VIMCO needs K ≥ 2 samples per objective (a leave-one-out signal), got "
                f"num_samples={num_samples!r}."
            )
        self.num_samples = None if num_samples is None else int(num_samples)

    @property
    def granularity(self) -> int:
        """estimate_grad never splits a K-sample group across chunks."""
        return self.num_samples or 1

    def _k(self, n: int) -> int:
        return self.num_samples if self.num_samples is not None else n

    def check(self, n: int) -> None:
        K = self._k(n)
        if n < 2 or K < 2 or n % K:
            good = max(2, K) * max(1, -(-n // max(2, K)))
            raise SampleSizeError(
                f"VIMCO with K={K} samples per objective needs n a multiple of K and K ≥ 2; got "
                f"n={n}. Fix: use n={good}, or VIMCO(num_samples=k) with k dividing n."
            )

    def contributions(self, evaluator, dist_fn, params, n, context=None) -> Contributions:
        self.check(n)
        K = self._k(n)
        model = SampleModel.expand(dist_fn, params, n)
        x = model.sample()
        fx = evaluator(x)
        scores = model.score(x)
        groups = n // K
        L_hat, signal = vimco_signals(fx.reshape(groups, K).T)  # (groups,), (K, groups)
        w = (signal.T.reshape(n) * K).to(fx)  # row k carries K × its term: block mean = sum
        grads = {k: broadcast_rows(w, s) * s for k, s in scores.items()}
        values = L_hat.repeat_interleave(K).to(fx)
        return Contributions(values=values, grads=grads, block=K)

    def surrogate(self, evaluator, dist, n, context=None):
        self.check(n)
        model = SampleModel.of(dist, n)
        model.refuse_moving_boundary(type(self).__name__)
        x = model.sample()
        fx = evaluator(x, keep_graph=True)  # log-weights (K, *items), may carry f's own graph
        L_graph = torch.logsumexp(fx, 0) - math.log(n)  # pathwise part: Σ w̃_k ∇ l_k
        _, signal = vimco_signals(fx)
        log_prob = model.log_prob(x, item_dims=fx.dim() - 1)
        score_part = (signal.to(log_prob) * (log_prob - log_prob.detach())).sum()
        return L_graph.detach().sum(), L_graph.sum() + score_part

    def __repr__(self):
        return f"VIMCO(num_samples={self.num_samples})" if self.num_samples else "VIMCO()"


@register_estimator
class RLOO(ScoreFunction):
    """The score function with a leave-one-out baseline across the n samples (Kool et al. 2019).

    ĝ = 1/(n-1) Σ_i (f(x_i) - f̄) ∇θ log p(x_i; θ): unbiased for ∇ E[f], no extra evaluations.
    Accepts the same ``control_variate`` and ``sampler`` as ``ScoreFunction``.
    """

    name = "rloo"

    def __init__(self, control_variate=None, sampler=None):
        super().__init__(baseline=LeaveOneOut(), control_variate=control_variate, sampler=sampler)

    @classmethod
    def auto_candidates(cls) -> list:
        return []  # ScoreFunction(LeaveOneOut()), one of ScoreFunction's candidates, is the same

    def __repr__(self):
        return "RLOO()"
