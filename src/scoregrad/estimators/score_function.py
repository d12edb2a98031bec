"""The score-function estimator (log-derivative trick, REINFORCE, likelihood ratio).

    ∇θ E_{p(x;θ)}[f(x)] = E[(f(x) - b) ∇θ log p(x; θ)]
                        ≈ (1/n) Σ_i [(f(x_i) - b_i) ∇θ log p(x_i; θ) - c ⊙ H(x_i)]

with a baseline b (``scoregrad.baselines``), optional control variate H (``scoregrad.control_variates``)
and a sampler (``scoregrad.sampling``: i.i.d., antithetic, randomised QMC). f is a black box: it
only ever sees detached samples. References: Williams 1992; Glynn 1990; Mohamed et al. 2020 §4.

>>> import torch, scoregrad as sg
>>> from torch.distributions import Normal
>>> mu = torch.tensor(1.0, requires_grad=True)
>>> est = sg.estimate_grad(lambda x: (x - 3.0) ** 2, lambda mu: Normal(mu, 1.0), {"mu": mu},
...                        n=100_000, estimator=ScoreFunction(baseline=sg.baselines.LeaveOneOut()),
...                        seed=0)
>>> abs(float(est.grad["mu"]) + 4.0) < 4 * float(est.stderr["mu"])   # exact: 2 (mu - 3) = -4
True
"""

from __future__ import annotations

import time

import torch

from ..baselines import Baseline, NoBaseline
from ..control_variates import ControlVariate
from ..core.arguments import require_instance
from ..core.loo import loo_coefficient
from ..core.model import SampleModel
from ..core.shapes import broadcast_rows
from ..dice import magic_box
from ..errors import EstimatorNotApplicable, SampleSizeError
from ..sampling import IID, Sampler
from .applicability import moving_support
from .base import DOORS, Contributions, Estimator
from .registry import register_estimator


def _weighted(w: torch.Tensor, scores: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """{k: w ⊙ s}, the per-sample signal broadcast along each score's trailing axes (one view
    of w per rank, shared by the scores of that rank)."""
    rows: dict[int, torch.Tensor] = {}
    out = {}
    for k, s in scores.items():
        r = rows.get(s.dim())
        if r is None:
            r = rows[s.dim()] = broadcast_rows(w, s)
        out[k] = r * s
    return out


def score_reason(dist) -> str | None:
    """Why an estimator built on ∇θ log p cannot be right for ``dist`` (a moving support)."""
    moving = moving_support(dist)
    if moving is not None:
        return f"{moving}; estimate the gradient with pathwise (rsample) or measure_valued instead"
    return None


@register_estimator
class ScoreFunction(Estimator):
    """Score-function gradient with a baseline, a control variate and a sampler of your choice.

    Declares: unbiased; one unit of n is a sample, one evaluation of f; both doors, except that a
    control variate with a coefficient fitted from the batch (``"loo"``) needs ``estimate_grad``.
    Not applicable when the support moves with θ (Uniform(0, θ)): the score misses the boundary term.
    """

    scores_every_sample = True  # (f - b) ∇ log p at every sample
    name = "score_function"

    def __init__(
        self,
        baseline: Baseline | None = None,
        control_variate: ControlVariate | None = None,
        sampler: Sampler | None = None,
    ):
        self.baseline = require_instance(baseline, Baseline, "baseline", NoBaseline())
        self.control_variate = require_instance(control_variate, ControlVariate, "control_variate")
        self.sampler = require_instance(sampler, Sampler, "sampler", IID())

    # -- declared capabilities ------------------------------------------------------------------
    @property
    def granularity(self) -> int:
        return self.sampler.granularity

    @property
    def doors(self) -> frozenset[str]:
        cv = self.control_variate
        if cv is not None and cv.uses_batch:
            return frozenset({"estimate_grad"})  # per-parameter coefficients need the parameters
        return DOORS

    def supports(self, dist) -> str | None:
        return super().supports(dist) or score_reason(dist) or self.sampler.supports(dist)

    @classmethod
    def auto_candidates(cls) -> list[Estimator]:
        """No baseline (the doors' default), leave-one-out, the optimal control variate (fitted
        leave-one-out: ``estimate_grad`` only) and antithetic pairs with leave-one-out."""
        from ..baselines import LeaveOneOut
        from ..control_variates import ScoreControlVariate
        from ..sampling import Antithetic

        return [
            cls(),
            cls(baseline=LeaveOneOut()),
            cls(control_variate=ScoreControlVariate()),
            cls(baseline=LeaveOneOut(), sampler=Antithetic()),
        ]

    # -- checks ---------------------------------------------------------------------------------
    def check(self, n: int) -> None:
        self.sampler.check_n(n)
        block = self.sampler.block_size(n)
        units = n // block
        need = max(self.baseline.min_units, 2 if self._loo_cv else 1)
        if units < need:
            what = (
                "a leave-one-out baseline" if self.baseline.min_units > 1 else "a 'loo' coefficient"
            )
            raise SampleSizeError(
                f"{what} needs at least {need} independent units, but n={n} gives {units}. "
                f"Fix: raise n to at least {need * block}, or use MovingAverage()/NoBaseline()."
            )

    @property
    def _loo_cv(self) -> bool:
        return self.control_variate is not None and self.control_variate.uses_batch

    # -- estimate_grad door -------------------------------------------------------------------------
    def contributions(self, evaluator, dist_fn, params, n, context=None) -> Contributions:
        self.check(n)
        return self._weigh(evaluator, dist_fn, params, *self._draw(evaluator, dist_fn, params, n),
                           context)  # fmt: skip

    def shared_draw(self):
        """Score functions with one sampler draw alike: (class, sampler); None when stateful."""
        return None if self.stateful else (type(self), repr(self.sampler))

    def contributions_shared(self, others, evaluator, dist_fn, params, n, context=None,
                             seconds=None):  # fmt: skip
        """One draw, one evaluation of f and one score for every configuration in
        ``(self, *others)``; each weighs them with its own baseline and control variate (the
        seconds of each one's weighing, into ``seconds``: its own work beyond the shared draw)."""
        group = (self, *others)
        if any(e.shared_draw() != self.shared_draw() or self.shared_draw() is None
               for e in group):  # fmt: skip
            return super().contributions_shared(others, evaluator, dist_fn, params, n, context,
                                                seconds)  # fmt: skip
        for e in group:
            e.check(n)
        drawn = self._draw(evaluator, dist_fn, params, n)
        out = []
        for e in group:
            t0 = time.process_time()
            out.append(e._weigh(evaluator, dist_fn, params, *drawn, context))
            if seconds is not None:
                seconds.append(time.process_time() - t0)
        return out

    def _draw(self, evaluator, dist_fn, params, n):
        """(samples, units' block size, f's values, per-sample scores) of n samples."""
        model = SampleModel.expand(dist_fn, params, n)
        model.refuse_moving_boundary(type(self).__name__)  # before f runs (score() would, after)
        x, block = self.sampler.draw(model)
        fx = evaluator(x)
        return x, block, fx, model.score(x)

    def _weigh(self, evaluator, dist_fn, params, x, block, fx, scores, context) -> Contributions:
        """The per-sample terms (f - b) ∇ log p - c ⊙ H of drawn samples."""
        cv = self.control_variate
        fixed = cv is not None and not cv.uses_batch
        signal = fx
        if fixed:
            # a fixed coefficient c: the baseline acts on the residual f - c h, not on f (else a
            # baseline near E[f] is subtracted twice when h already tracks f)
            c = float(cv.coefficient)
            h, mean, d_mean = self._control_terms(evaluator, dist_fn, params, x)
            signal = fx - c * h
        if self.baseline.zero:
            w = signal
        else:
            w = signal - self.baseline(signal, block=block, context=context)
        grads = _weighted(w, scores)
        values = fx
        if fixed:
            grads = {k: g + c * d_mean[k].to(g) for k, g in grads.items()}
            if mean is not None:
                values = fx - c * (h - mean.detach())
        elif cv is not None:
            values, grads = self._apply_loo_control_variate(
                evaluator, dist_fn, params, x, fx, scores, grads, block
            )
        self.baseline.update(signal, context)
        return Contributions(values=values, grads=grads, block=block)

    def _control_terms(self, evaluator, dist_fn, params, x):
        """h(x), E_θ[h] (or None when constant) and ∇θ E_θ[h] at the parameters."""
        leaves = {k: p.detach().requires_grad_() for k, p in params.items()}
        with torch.enable_grad():
            h, mean = self.control_variate.functions(x, evaluator.f, dist_fn(**leaves))
        if mean is None:  # E[h] is a constant: its gradient is zero
            return h, None, {k: torch.zeros_like(p) for k, p in leaves.items()}
        dm = torch.autograd.grad(mean, list(leaves.values()), allow_unused=True)
        d_mean = {
            k: g if g is not None else torch.zeros_like(leaves[k]) for k, g in zip(leaves, dm)
        }
        return h, mean, d_mean

    def _apply_loo_control_variate(self, evaluator, dist_fn, params, x, fx, scores, grads, block):
        """Subtract c ⊙ H with per-element coefficients estimated from the other blocks.

        With a baseline fitted from the batch (``uses_batch``), another sample's term (f_j - b_j) s_j
        carries sample i's own f through b_j, so its coefficient is fitted on (f_j - f̄_{-i}) s_j,
        with f̄_{-i} the mean outside i's block: independent of sample i, hence unbiased.
        """
        h, mean, d_mean = self._control_terms(evaluator, dist_fn, params, x)
        centred_by_batch = self.baseline.uses_batch
        out = {}
        for k, s in scores.items():
            H = broadcast_rows(h, s) * s - d_mean[k].to(s)
            c = (
                loo_coefficient(H, block, f=fx, s=s)
                if centred_by_batch
                else loo_coefficient(H, block, g=grads[k])
            )
            out[k] = grads[k] - c * H
        values = fx
        if mean is not None:
            hv = h - mean.detach()
            values = fx - loo_coefficient(hv, block, f=fx, s=torch.ones_like(fx)) * hv
        return values, out

    @property
    def stateful(self) -> bool:
        """Stateful when its baseline, control variate or sampler is."""
        parts = (self.baseline, self.control_variate, self.sampler)
        return any(getattr(p, "stateful", False) for p in parts if p is not None)

    def state_dict(self) -> dict:
        """The baseline's state (moving average, learned network), and the control variate's and
        sampler's when they are stateful, for checkpoints."""
        state = {"baseline": self.baseline.state_dict()}
        for key, part in self._stateful_parts().items():
            state[key] = part.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.baseline.load_state_dict(state["baseline"])
        for key, part in self._stateful_parts().items():
            part.load_state_dict(state[key])

    def _stateful_parts(self) -> dict:
        parts = {"control_variate": self.control_variate, "sampler": self.sampler}
        return {k: p for k, p in parts.items() if getattr(p, "stateful", False)}

    # -- expectation door (DiCE) --------------------------------------------------------------------
    def surrogate(self, evaluator, dist, n, context=None):
        self.check(n)
        model = SampleModel.of(dist, n)
        model.refuse_moving_boundary(type(self).__name__)
        x, block = self.sampler.draw(model)
        if evaluator.takes_log_prob:  # f reuses log p(x) (an ELBO's log q): computed once
            log_prob = model.log_prob(x, item_dims=len(evaluator.item_shape))
            fx = evaluator(x, keep_graph=True, log_prob=log_prob.detach())
        else:
            fx = evaluator(x, keep_graph=True)  # f may depend on other parameters (pathwise there)
            log_prob = model.log_prob(x, item_dims=fx.dim() - 1)
        fd = fx.detach()
        # DiCE, box·f + (1 - box)·b with box = 1 + expm1(L - stop(L)), written f + expm1(·)(f - b):
        # f exactly in value (expm1(0) = 0), the same derivatives to every order (f stays on the
        # graph, so ∂θ∂φ keeps E[∇θL ∇φf] for f's own parameters φ), in fewer ops; mean over
        # samples, sum over items (if f returns one value per sample and item)
        signal = fx if self.baseline.zero else fx - self.baseline(fd, block=block, context=context)
        surrogate = (fx + torch.expm1(log_prob - log_prob.detach()) * signal).mean(0).sum()
        value = fd.mean(0).sum()
        cv = self.control_variate
        if cv is not None:
            box = magic_box(log_prob)
            if cv.uses_batch:
                raise EstimatorNotApplicable(
                    "scoregrad.expectation takes control variates with a fixed number as "
                    "coefficient (per-parameter 'loo' coefficients need the parameters: use "
                    "scoregrad.estimate_grad, or a baseline here)."
                )
            c = float(cv.coefficient)
            if fx.dim() > 1:
                raise EstimatorNotApplicable(
                    "control variates in scoregrad.expectation need one value per sample; "
                    "f returned values per item."
                )
            h, mean = cv.functions(x, evaluator.f, dist)
            if mean is None:  # E[h] is a constant: only the score part of H remains
                surrogate = surrogate - c * ((box - 1.0) * h).mean()
            else:
                surrogate = surrogate - c * ((box * h).mean() - mean)
                value = value - c * (h.mean() - mean.detach())
        self.baseline.update(fd, context)
        return value.detach(), surrogate

    def __repr__(self):
        parts = [repr(self.baseline)]
        if self.control_variate is not None:
            parts.append(repr(self.control_variate))
        if not self.sampler.independent:
            parts.append(repr(self.sampler))
        return f"ScoreFunction({', '.join(parts)})"
