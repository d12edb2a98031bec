"""The contract every gradient estimator implements, and the capabilities it declares.

An estimator offers two doors onto one piece of machinery:

* ``contributions(evaluator, dist_fn, params, n, context)`` → ``Contributions``: per-unit values of
  f (after any value control variate) and per-unit gradient terms {name: (n, *param.shape)},
  plus the block size of the sampler. ``scoregrad.estimate_grad`` averages them over blocks and
  turns their spread into standard errors, so every estimator gets honest errors for free.
* ``surrogate(evaluator, dist, n, context)`` → (value, surrogate): a scalar whose value is the MC
  estimate and whose gradient, with respect to whatever built ``dist``, is the estimator.
  ``scoregrad.expectation`` returns it for training loops.

This mirrors mc_gradients' uniform (function, samples, distribution) → (surrogate, Jacobians) contract.

Declared capabilities (attributes and methods; the doors, the diagnostics and the applications
read them, never the class or its name):

==========================  ========================================================================
``name``                    snake_case registry name (``registry.register_estimator``)
``supports(dist)``          None if the estimator can be right for ``dist``, else the reason
``biased``                  True for estimators that are biased by construction (relaxations)
``estimates``               the objective whose gradient it estimates: "E[f]", or VIMCO's
                            "E[log mean_K exp f]"
``unit``                    what one unit of ``n`` is: "sample", "antithetic pair", ...
``samples_per_unit``        draws of x per unit of n
``evals_per_unit(dist)``    evaluations of f one unit of n costs for this distribution (a method of
                            ``dist`` for every estimator, because for measure-valued derivatives it
                            grows with the number of parameter elements)
``granularity``             consecutive units of n that depend on each other (an antithetic pair of
                            samples, a QMC replicate, a VIMCO group): chunks never split them
``doors``                   which doors run it correctly: {"estimate_grad", "expectation"}
``needs_differentiable_f``  f must be torch code differentiable in x (so it must run in process)
``needs_rsample``           the distribution must have ``rsample``
``needs_f_param_graph``     the door must hand it f with f's own graph in the parameters (VIMCO:
                            its objective is nonlinear in f), so ``vi.EstimateGradELBO`` refuses it
``auto_candidates()``       the configured instances ``Auto`` may choose among (default: one
                            default-constructed instance; the score function offers its baselines,
                            control variate and samplers)
==========================  ========================================================================

>>> import torch, scoregrad as sg
>>> from torch.distributions import Normal, Poisson
>>> sg.Pathwise().supports(Poisson(2.0))
'Poisson has no reparameterised sampler (rsample), so samples cannot be differentiated with respect to the parameters'
>>> e = sg.DisARM()
>>> e.unit, e.samples_per_unit, e.evals_per_unit(Normal(0.0, 1.0)), e.biased
('antithetic pair', 2, 2, False)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.distributions as D

from ..core.shapes import broadcast_rows
from ..errors import EstimatorNotApplicable
from .applicability import implements, not_applicable

__all__ = ["Contributions", "Estimator", "broadcast_rows", "DOORS"]

#: the two doors into the estimators
DOORS = frozenset({"estimate_grad", "expectation"})


@dataclass
class Contributions:
    """Per-sample pieces of a gradient estimate; blocks of ``block`` consecutive rows are the
    independent units (1 for i.i.d. sampling)."""

    values: torch.Tensor
    grads: dict[str, torch.Tensor]
    block: int = 1


class Estimator:
    """Base class of gradient estimators (see the module docstring for the contract)."""

    name: str = "estimator"
    #: whether it learns across calls (``scoregrad.core.state``: state_dict round-trips exactly)
    stateful: bool = False
    biased: bool = False
    estimates: str = "E[f]"
    unit: str = "sample"
    samples_per_unit: int = 1
    doors: frozenset[str] = DOORS
    needs_differentiable_f: bool = False
    needs_rsample: bool = False
    needs_f_param_graph: bool = False
    #: whether every estimate multiplies in the family's score at each sample, so that parameter
    #: values outside the family's domain (NaN, a zero scale) make it non-finite: a prepared
    #: estimate may then build a ``Family`` that declares ``checked_by_outcome`` without torch's
    #: per-call checks, validating only when the estimate fails (ARM's comparisons u < σ(NaN),
    #: for one, give a finite estimate at NaN logits, so it keeps the checks)
    scores_every_sample: bool = False
    #: estimator classes this one Rao-Blackwellises: on the same draws and evaluations of f it is
    #: their conditional expectation, so its variance is never higher at the same cost (``Auto``
    #: leaves them out when this one is a candidate)
    rao_blackwellises: tuple[type, ...] = ()
    #: what the estimator reports on its last estimate (``Auto``: its ``AutoReport``), else None
    report = None

    @property
    def granularity(self) -> int:
        """Consecutive units of n that a chunk must never split (1: any split is fine)."""
        return 1

    def evals_per_unit(self, dist: D.Distribution) -> int:
        """Evaluations of f that one unit of n costs with this distribution."""
        return self.samples_per_unit

    def supports(self, dist: D.Distribution) -> str | None:
        """None when the estimator can be right for ``dist``, else the reason it cannot.

        The default needs what the score function needs: ``sample`` (or ``rsample``) and
        ``log_prob``, and, when ``needs_rsample``, a reparameterised sampler.
        """
        name = type(dist).__name__
        if not (implements(dist, "sample") or implements(dist, "rsample")):
            return f"{name} implements neither sample nor rsample"
        if self.needs_rsample and not dist.has_rsample:
            return (
                f"{name} has no reparameterised sampler (rsample), so samples cannot be "
                "differentiated with respect to the parameters"
            )
        if not self.needs_rsample and not implements(dist, "log_prob"):
            return f"{name} implements no log_prob, so it has no score ∇θ log p"
        return None

    @classmethod
    def auto_candidates(cls) -> list[Estimator]:
        """Configured instances for ``Auto``'s pilot (the default construction; none when the
        class needs arguments)."""
        try:
            return [cls()]
        except TypeError:
            return []

    def require(self, dist: D.Distribution) -> None:
        """Raise ``EstimatorNotApplicable`` (naming the estimators that apply) unless
        ``supports(dist)`` is None."""
        why = self.supports(dist)
        if why is not None:
            raise not_applicable(type(self).__name__, dist, why)

    def check(self, n: int) -> None:
        """Raise a clear error before any evaluation of f if n cannot work."""

    def contributions(self, evaluator, dist_fn, params, n, context=None) -> Contributions:
        raise NotImplementedError

    def shared_draw(self):
        """A key, or None. Estimators with equal keys draw the same samples from the same seed
        and evaluate f on them alike, differing only in how they weigh the terms (the score
        function's baselines and control variates), so that one draw can serve them all:
        ``contributions_shared``. Auto's screen uses it; stateful estimators return None."""
        return None

    def kin(self):
        """A key: estimators with equal keys weigh f's values alike (the score function's
        configurations, whatever their sampler), so a pilot's few rows mislead them together
        (a heavy tail of f ∇log p hidden from one is hidden from all). Auto's race gives one
        slot per kin. By default the class."""
        return type(self)

    def contributions_shared(self, others, evaluator, dist_fn, params, n, context=None,
                             seconds=None):  # fmt: skip
        """``[c.contributions(...) for c in (self, *others)]`` for estimators sharing this one's
        ``shared_draw`` key, from one draw and one evaluation of f where the class can (each
        result bit for bit what its own call from the same seed gives); the default calls
        each in turn. A list ``seconds`` receives each member's CPU seconds of its own work, beyond
        what the members share (here: its whole call); Auto charges a member the shared part and
        its own, what it would cost alone."""
        out = []
        for e in (self, *others):
            t0 = time.process_time()
            out.append(e.contributions(evaluator, dist_fn, params, n, context=context))
            if seconds is not None:
                seconds.append(time.process_time() - t0)
        return out

    def surrogate(self, evaluator, dist, n, context=None) -> tuple[torch.Tensor, torch.Tensor]:
        raise EstimatorNotApplicable(
            f"{type(self).__name__} has no surrogate form for scoregrad.expectation; "
            "use scoregrad.estimate_grad."
        )

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
