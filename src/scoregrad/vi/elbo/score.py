"""The two doors onto the core estimators: ``ScoreFunctionELBO`` (``scoregrad.expectation``, any
surrogate estimator, VIMCO included) and ``EstimateGradELBO`` (``scoregrad.estimate_grad``, with
per-parameter control variates and standard errors)."""

from __future__ import annotations

from ...baselines import LeaveOneOut
from ...core import sum_trailing, unchecked
from ...errors import EstimatorNotApplicable
from ...estimate import estimate_grad
from ...estimators.base import Estimator
from ...estimators.score_function import ScoreFunction
from ...prepared import PreparedExpectation
from ..guides import Guide
from .base import ELBOEstimator, _as_dist, _check_n, _estimator_state, _load_estimator_state, _log_q
from .checks import call_log_joint


class ScoreFunctionELBO(ELBOEstimator):
    """The score-function ELBO gradient through ``scoregrad.expectation`` with any core estimator.

    f(z) = log p(x, z) - log q(z) is evaluated at detached samples with log q's parameters held
    fixed (its direct gradient has expectation E[∇φ log q] = 0 and only adds noise); f keeps the
    log joint's graph, so a decoder inside the log joint gets its pathwise gradient, and for
    Bernoulli guides f stays differentiable in z (relaxed samples in [0, 1] work: REBAR, RELAX,
    Gumbel-softmax). For estimators that declare ``needs_f_param_graph`` (VIMCO: its
    log-mean-exp objective is nonlinear in f) log q keeps its graph (``log_q_graph``), because
    the multi-sample bound's pathwise term Σ_k w̃_k ∇φ log w_k has a non-zero mean.
    With ``item_shape`` (B,) the guide is amortised over B data points and baselines act per
    data point.

    >>> import torch, scoregrad as sg
    >>> from scoregrad.vi import MeanFieldBernoulli
    >>> log_joint = lambda z: (3.0 * z - 1.0).sum(-1)       # favours z = 1
    >>> guide = MeanFieldBernoulli(4)
    >>> est = ScoreFunctionELBO(sg.ScoreFunction(sg.baselines.LeaveOneOut()))
    >>> est(log_joint, guide, n=256).backward()
    >>> bool((guide.logits.grad > 0).all())
    True
    """

    name = "score_function"

    def __init__(self, estimator: Estimator | None = None, log_q_graph: bool | None = None):
        self.estimator = estimator if estimator is not None else ScoreFunction(LeaveOneOut())
        baseline = getattr(self.estimator, "baseline", None)
        self.min_n = getattr(baseline, "min_units", 1)
        if log_q_graph is None:
            # objectives nonlinear in f (VIMCO) need ∇φ log w at fixed z: its mean is not zero
            log_q_graph = needs_f_param_graph(self.estimator)
            self.min_n = 2 if log_q_graph else self.min_n
        self.log_q_graph = bool(log_q_graph)
        self._prepared: dict[tuple, PreparedExpectation] = {}

    def _door(self, n, item_shape) -> PreparedExpectation:
        """The expectation door prepared for (n, item_shape): checks once per training run."""
        key = (n, item_shape)
        door = self._prepared.get(key)
        if door is None:
            door = PreparedExpectation(None, n, self.estimator, item_shape=item_shape)
            self._prepared[key] = door
        return door

    def __call__(self, log_joint, guide, n, item_shape=(), context=None):
        _check_n(n)
        q = _as_dist(guide)
        keep = 1 + len(tuple(item_shape))
        fixed = not self.log_q_graph
        q_own = unchecked(q)  # log q of q's own samples: torch's sample check skipped, per object

        def f(z, log_q=None):  # log_q: the door's log q(z), when it computes it anyway
            lq = _log_q(q_own, z, keep, fixed) if log_q is None else log_q
            return call_log_joint(log_joint, z, tuple(item_shape)) - lq

        f.takes_log_prob = fixed  # log q with its graph (VIMCO) is f's own

        return self._door(n, tuple(item_shape))(q, context=context, f=f)

    def state_dict(self):
        return _estimator_state(self.estimator)

    def load_state_dict(self, state):
        _load_estimator_state(self.estimator, state)

    def __repr__(self):
        return f"ScoreFunctionELBO({self.estimator!r})"


def needs_f_param_graph(estimator) -> bool:
    """Whether the estimator declares that f's own dependence on the parameters matters (an
    objective nonlinear in f, such as VIMCO's log-mean-exp): a door must then hand it f with its
    graph to them."""
    return bool(getattr(estimator, "needs_f_param_graph", False))


class EstimateGradELBO(ELBOEstimator):
    """Any core estimator through ``scoregrad.estimate_grad`` (the door with per-parameter
    control variates such as ``DeltaMethod`` and ``ScoreControlVariate`` with leave-one-out
    coefficients), turned into an ELBO surrogate for a training loop.

    f(z) = log p(x, z) - log q(z) is handed to the estimator with log q evaluated at detached guide
    parameters, so f is a differentiable function of z (the delta method expands it around the
    guide's mean) but carries no graph to φ. Needs a ``Guide``; the log joint's own parameters get
    no gradient this way (use ``ScoreFunctionELBO`` for models with a decoder).
    The last ``GradientEstimate`` (with standard errors) is kept in ``self.last``.
    """

    name = "estimate_grad"

    def __init__(self, estimator: Estimator):
        if needs_f_param_graph(estimator):
            raise EstimatorNotApplicable(
                f"EstimateGradELBO cannot run {estimator!r}: this door holds log q fixed, but the "
                "estimator's objective is nonlinear in f (it declares needs_f_param_graph), so "
                "f's own dependence on the guide's parameters (the pathwise term Σ_k w̃_k ∇φ "
                "log w_k of a multi-sample bound) does not average out and would be lost. Fix: "
                f"use ScoreFunctionELBO({estimator!r}), which keeps log q's graph, or "
                "ImportanceWeightedELBO(k) for a reparameterisable guide."
            )
        self.estimator = estimator
        baseline = getattr(estimator, "baseline", None)
        cv = getattr(estimator, "control_variate", None)
        self.min_n = max(getattr(baseline, "min_units", 1), 2 if cv is not None else 1)
        self.last = None

    def __call__(self, log_joint, guide, n, item_shape=(), context=None):
        _check_n(n)
        if not isinstance(guide, Guide) or tuple(item_shape):
            raise EstimatorNotApplicable(
                "EstimateGradELBO needs a global scoregrad.vi.Guide (its dist_fn and parameters); "
                "for amortised guides use ScoreFunctionELBO with item_shape."
            )
        params = guide.params()
        qd = guide.dist_fn(**{k: p.detach() for k, p in params.items()})

        def f(z):
            return call_log_joint(log_joint, z) - sum_trailing(qd.log_prob(z), keep=1)

        est = estimate_grad(f, guide.dist_fn, params, n, self.estimator, context=context)
        self.last = est
        return est.value + sum(
            (est.grad[k].detach() * (p - p.detach())).sum() for k, p in params.items()
        )

    def state_dict(self):
        return _estimator_state(self.estimator)

    def load_state_dict(self, state):
        _load_estimator_state(self.estimator, state)

    def __repr__(self):
        return f"EstimateGradELBO({self.estimator!r})"
