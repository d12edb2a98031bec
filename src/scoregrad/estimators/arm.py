"""ARM and DisARM: antithetic, unbiased gradients for Bernoulli random variables.

For b ~ Bernoulli(σ(θ)) (independent elements, logits θ) draw u ~ U(0, 1) per element and form the
antithetic pair b = 1[u < σ(θ)], b̃ = 1[1 - u < σ(θ)]; both are exact Bernoulli(σ(θ)) draws.

* ARM (Yin & Zhou 2019, "ARM: Augment-REINFORCE-Merge Gradient for Stochastic Binary Networks"):

      ∇θ E[f(b)] = E_u[(f(b̃) - f(b)) (u - ½)].

* DisARM (Dong, Mnih & Tucker 2020, "DisARM: An Antithetic Gradient Estimator for Binary Latent
  Variables") integrates out u given the pair, which never increases the variance:

      ∇θ_i E[f(b)] = E[½ (f(b) - f(b̃)) (-1)^{b̃_i} 1[b_i ≠ b̃_i] σ(|θ_i|)].

A Categorical is handled through its K-1 stick-breaking Bernoullis,
σ(η_k) = p_k / (1 - Σ_{j<k} p_j), x = the first k with b_k = 1: ARM/DisARM on those bits,
chained back to the probabilities.

Both need no gradient of f and cost two evaluations of f per pair; here ``n`` is the number of
pairs, so ``n_evals = 2 n`` and every pair is one independent unit behind the standard errors.
The value reported is the mean of f over both members of each pair (unbiased for E[f]).
Gradients are formed with respect to the logits and carried to any parameters that built the
distribution by the chain rule, so ``Bernoulli(probs=...)`` and ``Independent`` wrappers work too.

On the RELAX toy f(b) = (b - t)², θ = 0, the single-pair variance is (1 - 2t)²/48 for ARM and 0 for
DisARM (the two members always differ at θ = 0).

>>> import torch, scoregrad as sg
>>> from torch.distributions import Bernoulli
>>> theta = torch.zeros(1, requires_grad=True)
>>> est = sg.estimate_grad(lambda b: ((b - 0.499) ** 2).sum(-1), lambda theta: Bernoulli(
...     logits=theta), {"theta": theta}, n=100, estimator=DisARM(), seed=0)
>>> round(float(est.grad["theta"]), 6), float(est.stderr["theta"]), est.n_evals  # ¼(1 - 2t)
(0.0005, 0.0, 200)

With ``scoregrad.expectation`` (e.g. a binary VAE, one row of latents per data point):

>>> logits = torch.zeros(4, 1, requires_grad=True)            # 4 data points, 1 latent each
>>> loss = sg.expectation(lambda b: b.sum(-1), Bernoulli(logits=logits), n=8,
...                       estimator=DisARM(), item_shape=(4,), seed=0)
>>> loss.backward(); torch.allclose(logits.grad, torch.full((4, 1), 0.25))   # σ'(0) = ¼, exactly
True
"""

from __future__ import annotations

import torch
import torch.distributions as D

from ..core.model import SampleModel, refuse_moving_boundary_of
from ..core.shapes import broadcast_rows
from ..errors import SampleSizeError
from .applicability import not_applicable, unwrap
from .base import Contributions, Estimator
from .natural import NaturalParams, linear_term
from .registry import register_estimator

__all__ = ["ARM", "DisARM", "stick_logits", "BINARY_ENCODINGS"]


def _logits(d: D.Distribution) -> tuple[torch.Tensor]:
    return (d.logits,)


def stick_logits(probs: torch.Tensor) -> torch.Tensor:
    """Logits η (..., K-1) of the stick-breaking Bernoullis of a Categorical(probs):
    x = the first k with b_k = 1 (K-1 if none), b_k ~ Bernoulli(σ(η_k)),
    σ(η_k) = p_k / (1 - Σ_{j<k} p_j)."""
    eps = torch.finfo(probs.dtype).eps
    rest = 1.0 - torch.cumsum(probs, -1) + probs  # 1 - Σ_{j<k} p_j
    q = (probs[..., :-1] / rest[..., :-1].clamp_min(eps)).clamp(eps, 1.0 - eps)
    return torch.logit(q)


def _sticks(d: D.Distribution) -> tuple[torch.Tensor]:
    return (stick_logits(d.probs),)


def _first_one(b: torch.Tensor) -> torch.Tensor:
    """Category index from stick-breaking bits (..., K-1): the first 1, or K-1 if none."""
    ones = torch.ones(*b.shape[:-1], 1, dtype=b.dtype, device=b.device)
    return torch.cat([b, ones], -1).argmax(-1)


#: family -> (natural logits of its binary decisions, decisions -> sample); looked up by MRO, so a
#: subclass of a registered family is handled like it (OneHotCategorical is not a Categorical)
BINARY_ENCODINGS: dict[type, tuple] = {
    D.Bernoulli: (_logits, lambda b: b),
    D.Categorical: (_sticks, _first_one),
}


def _encoding(dist):
    for cls in type(unwrap(dist)).__mro__:
        if cls in BINARY_ENCODINGS:
            return BINARY_ENCODINGS[cls]
    return None


class _BernoulliPair(Estimator):
    """Shared machinery of ARM and DisARM: antithetic Bernoulli pairs, two evaluations of f.

    A Categorical is handled through its stick-breaking Bernoullis (``stick_logits``): the estimator
    is applied to those K-1 binary decisions and the gradient carried back to the probabilities by
    the chain rule (the construction of Dong, Mnih & Tucker 2021, "Coupled Gradient Estimators for
    Discrete Latent Variables", §3).

    Declares: unbiased; f a black box; one unit of n is an antithetic pair of samples, costing two
    evaluations of f.
    """

    unit = "antithetic pair"
    samples_per_unit = 2

    def supports(self, dist) -> str | None:
        if _encoding(dist) is not None:
            return None
        known = " or ".join(c.__name__ for c in BINARY_ENCODINGS)
        return f"it needs {known} random variables, got {type(unwrap(dist)).__name__}"

    def check(self, n: int) -> None:
        if not isinstance(n, int) or n < 1:
            raise SampleSizeError(
                f"{type(self).__name__} needs n ≥ 1 antithetic pairs, got n={n!r}. Each pair costs "
                "two evaluations of f."
            )

    @staticmethod
    def _pair(logits: torch.Tensor):
        u = torch.rand(logits.shape, dtype=logits.dtype, device=logits.device)
        p = torch.sigmoid(logits)
        b = (u < p).to(logits.dtype)
        b_tilde = (1.0 - u < p).to(logits.dtype)
        return u, b, b_tilde

    def logit_grad(self, u, b, b_tilde, logits, f_b, f_bt) -> torch.Tensor:
        """Per-sample gradient with respect to the logits, (n, *batch), of a pair (b, b̃) drawn
        from the common uniforms u, given f at both (the graphs' rule calls it too)."""
        raise NotImplementedError

    def _family(self, dist):
        why = self.supports(dist)
        if why is not None:
            raise not_applicable(type(self).__name__, dist, why)
        getter, decode = _encoding(dist)
        return unwrap(dist), getter, decode

    def contributions(self, evaluator, dist_fn, params, n, context=None) -> Contributions:
        self.check(n)
        model = SampleModel.expand(dist_fn, params, n)
        _, getter, decode = self._family(model.dist)
        nat = NaturalParams(model, getter, type(self).__name__)
        logits = nat.value[0]
        u, b, bt = self._pair(logits)
        shape = model.draw_shape
        fx = evaluator(torch.cat([decode(b).reshape(shape), decode(bt).reshape(shape)]))
        f_b, f_bt = fx[:n], fx[n:]
        g = self.logit_grad(u, b, bt, logits, f_b, f_bt)
        return Contributions(values=0.5 * (f_b + f_bt), grads=nat.pullback((g,)), block=1)

    def surrogate(self, evaluator, dist, n, context=None):
        self.check(n)
        base, getter, decode = self._family(dist)
        refuse_moving_boundary_of(dist, type(self).__name__)
        with torch.enable_grad():
            (logits_t,) = getter(base)
        logits = logits_t.detach().unsqueeze(0).expand(n, *logits_t.shape)
        u, b, bt = self._pair(logits)
        shape = (n, *dist.batch_shape, *dist.event_shape)
        both = torch.cat([decode(b).reshape(shape), decode(bt).reshape(shape)])
        fx = evaluator(both, keep_graph=True)
        f_b, f_bt = fx[:n], fx[n:]
        g = self.logit_grad(u, b, bt, logits, f_b.detach(), f_bt.detach())
        surrogate = 0.5 * (f_b + f_bt).mean(0).sum() + linear_term((logits_t,), (g.mean(0),))
        value = 0.5 * (f_b + f_bt).detach().mean(0).sum()
        return value, surrogate


@register_estimator
class ARM(_BernoulliPair):
    """Augment-REINFORCE-Merge (Yin & Zhou 2019) for Bernoulli variables; n pairs, 2n evaluations.

    ĝ_i = (f(b̃) - f(b)) (u_i - ½), with b = 1[u < σ(θ)], b̃ = 1[1 - u < σ(θ)].
    """

    name = "arm"

    def logit_grad(self, u, b, b_tilde, logits, f_b, f_bt):
        diff = f_bt - f_b
        return broadcast_rows(diff, u) * (u - 0.5)


@register_estimator
class DisARM(_BernoulliPair):
    """DisARM (Dong, Mnih & Tucker 2020): ARM with u integrated out given the pair.

    ĝ_i = ½ (f(b) - f(b̃)) (-1)^{b̃_i} 1[b_i ≠ b̃_i] σ(|θ_i|); n pairs, 2n evaluations.
    """

    name = "disarm"
    # E[ARM | b, b̃] (Dong, Mnih & Tucker 2020, §3): the same pairs and evaluations of f, the
    # uniforms integrated out; with stick-breaking bits the same holds bit by bit
    rao_blackwellises = (ARM,)

    def logit_grad(self, u, b, b_tilde, logits, f_b, f_bt):
        diff = broadcast_rows(f_b - f_bt, u)
        sign = 1.0 - 2.0 * b_tilde
        differ = (b != b_tilde).to(logits.dtype)
        return 0.5 * diff * sign * differ * torch.sigmoid(logits.abs())
