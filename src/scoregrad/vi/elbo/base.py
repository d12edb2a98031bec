"""The ELBO estimator contract and the helpers every ELBO shares: the guide as a distribution,
log q (relaxed-sample aware for Bernoulli guides), sample-size checks, estimator state."""

from __future__ import annotations

import torch
import torch.distributions as D
import torch.nn.functional as F

from ...core import sum_trailing
from ...errors import SampleSizeError
from ..guides import Guide


def _as_dist(guide) -> D.Distribution:
    if isinstance(guide, Guide):
        return guide()
    if isinstance(guide, D.Distribution):
        return guide
    raise TypeError(
        f"the guide must be a scoregrad.vi.Guide or a torch.distributions.Distribution, got "
        f"{type(guide).__name__}."
    )


def _bernoulli(q: D.Distribution):
    """(logits, reinterpreted dims) if q is a Bernoulli, possibly wrapped in Independent."""
    dims = 0
    while isinstance(q, D.Independent):
        dims += q.reinterpreted_batch_ndims
        q = q.base_dist
    return (q.logits, dims) if isinstance(q, D.Bernoulli) else (None, 0)


def _log_q(q: D.Distribution, z: torch.Tensor, keep: int, fixed: bool = False) -> torch.Tensor:
    """log q(z) summed to (n, *items): the first ``keep`` axes are kept.

    For Bernoulli guides it is written out, z log σ(a) + (1 - z) log σ(-a), so relaxed z in
    [0, 1] (REBAR, RELAX, Gumbel-softmax) are accepted and differentiated through. ``fixed``
    evaluates it with the guide's parameters held fixed (no graph to them): still differentiable
    in z for Bernoulli guides, detached otherwise.
    """
    logits, _ = _bernoulli(q)
    if logits is not None:
        a = logits.detach() if fixed else logits
        lp = z * F.logsigmoid(a) + (1.0 - z) * F.logsigmoid(-a)
        return sum_trailing(lp, keep=keep)
    relaxed = getattr(q, "relaxed_log_prob", None)  # a guide that declares relaxed inputs
    if relaxed is not None and z.is_floating_point():
        return sum_trailing(relaxed(z, fixed=fixed), keep=keep)
    if fixed:  # no graph to build: it would only be detached
        with torch.no_grad():
            return sum_trailing(q.log_prob(z), keep=keep)
    return sum_trailing(q.log_prob(z), keep=keep)


def _check_n(n):
    if not isinstance(n, int) or n < 1:
        raise SampleSizeError(f"n must be a positive integer number of samples, got {n!r}.")


# --------------------------------------------------------------------------------------------
# estimators
# --------------------------------------------------------------------------------------------
def _estimator_state(est) -> dict:
    """An estimator's state, with its baseline's (core estimators keep learned baselines on
    ``.baseline``, whose state must survive a checkpoint for resumed runs to be exact)."""
    out = {"estimator": est.state_dict() if hasattr(est, "state_dict") else {}}
    baseline = getattr(est, "baseline", None)
    if baseline is not None and hasattr(baseline, "state_dict"):
        out["baseline"] = baseline.state_dict()
    return out


def _load_estimator_state(est, state: dict) -> None:
    if hasattr(est, "load_state_dict"):
        est.load_state_dict(state.get("estimator", {}))
    baseline = getattr(est, "baseline", None)
    if "baseline" in state and baseline is not None:
        baseline.load_state_dict(state["baseline"])


class ELBOEstimator:
    """Base class: ``est(log_joint, guide, n, item_shape=(), context=None)`` → surrogate."""

    name = "elbo"
    #: fewest samples per step the estimator accepts
    min_n = 1

    def __call__(self, log_joint, guide, n: int, item_shape=(), context=None) -> torch.Tensor:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
