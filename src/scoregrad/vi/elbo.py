"""Estimators of the evidence lower bound and its gradient for black-box variational inference.

    ELBO(φ) = E_{q(z; φ)}[log p(x, z) - log q(z; φ)] ≤ log p(x)

Every estimator here is called as ``est(log_joint, guide, n, item_shape=())`` and returns a scalar
*surrogate* tensor whose value is the Monte Carlo ELBO estimate and whose ``.backward()`` deposits
the estimator's ELBO gradient on the guide's parameters (and, pathwise, on any parameters the log
joint uses, such as a decoder). Maximise it (minimise its negative).

* ``ScoreFunctionELBO(estimator)``: ∇φ ELBO = E_q[(log p(x,z) - log q(z)) ∇φ log q(z)], through
  ``scoregrad.expectation`` with any core estimator (``ScoreFunction`` with a baseline, and the
  discrete-latent estimators ARM/DisARM/REBAR/RELAX where installed). Needs only ``log_prob`` and
  ``sample``: any model, discrete latents included (Ranganath, Gerrish, Blei 2014).
* ``RaoBlackwellELBO(control_variate=True)``: BBVI's variance reduction for mean-field guides
  q(z) = Π_d q_d(z_d; φ_d). Component d's gradient uses only the terms that depend on z_d,

      ∇φ_d ELBO = E_q[∇φ_d log q_d(z_d) (log p_d(x, z) - log q_d(z_d) - a_d)],

  where log p_d is the model's Markov blanket of z_d (``model.log_joint_local``) or, for a black
  box, the whole log joint; the other components' log q_j are independent of z_d's score and are
  dropped. a_d is the per-element optimal control-variate coefficient Cov(f s, s)/Var(s),
  estimated leave-one-out so the estimator stays unbiased (Ranganath et al. 2014, §3).
* ``PathwiseELBO()``: z = g(ε; φ) by ``rsample``; differentiates through the sample (Kingma &
  Welling 2014). Only for reparameterisable guides.
* ``ImportanceWeightedELBO(k)``: the pathwise multi-sample bound
  log (1/k) Σ_k p(x, z_k)/q(z_k) (Burda, Grosse, Salakhutdinov 2016); ``iw_bound`` evaluates it
  without gradients (for 1000-sample test bounds).
* ``exact_elbo``: the ELBO summed over every latent configuration, for small discrete guides, a
  differentiable reference for tests.

``log_joint(z)`` takes latents with the sample axis first, shape (n, *latent_shape), and returns
one value per sample (n,), or per sample and data point (n, *item_shape) for amortised guides.
A model object with a ``log_joint`` method (and optionally ``support``, ``log_joint_local``) works
in its place.

>>> import torch, scoregrad as sg
>>> from scoregrad.vi import MeanFieldNormal, RaoBlackwellELBO
>>> log_joint = lambda z: torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
>>> guide = MeanFieldNormal(2, init_loc=1.0)
>>> elbo = RaoBlackwellELBO()(log_joint, guide, n=64)
>>> elbo.backward()          # guide.loc.grad ≈ -loc (the exact gradient of -KL(q‖N(0,I)))
>>> bool((guide.loc.grad < 0).all())
True
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.distributions as D
import torch.nn.functional as F
from torch.distributions import constraints

from ..baselines import Baseline, LeaveOneOut, NoBaseline
from ..control_variates import excluding_own_block, loo_coefficient
from ..core import SampleModel, sum_trailing
from ..errors import EstimatorNotApplicable, SampleSizeError
from ..estimate import expectation
from ..estimators.base import Estimator
from ..estimators.score_function import ScoreFunction
from .errors import LogJointError, SupportMismatchError
from .guides import Guide

__all__ = [
    "ELBOEstimator",
    "ScoreFunctionELBO",
    "RaoBlackwellELBO",
    "PathwiseELBO",
    "ImportanceWeightedELBO",
    "EstimateGradELBO",
    "iw_bound",
    "exact_elbo",
    "call_log_joint",
    "check_support",
]


# --------------------------------------------------------------------------------------------
# the log joint: calling it, checking what comes back, and the guide's support
# --------------------------------------------------------------------------------------------
def _log_joint_fn(model) -> Callable:
    fn = getattr(model, "log_joint", model)
    if not callable(fn):
        raise TypeError(
            f"log_joint must be a callable z -> log p(x, z) or a model with a log_joint method, "
            f"got {type(model).__name__}."
        )
    return fn


def call_log_joint(model, z: torch.Tensor, item_shape: tuple[int, ...] = ()) -> torch.Tensor:
    """log p(x, z) for latents z (sample axis first), checked: shape (n, *item_shape), finite.

    Raises ``LogJointError`` for NaN, a wrong shape or a non-numeric result, and
    ``SupportMismatchError`` when the model rejects the guide's samples as outside its support.
    """
    fn = _log_joint_fn(model)
    n = z.shape[0]
    try:
        out = fn(z)
    except ValueError as e:
        if "support" in str(e).lower():
            raise SupportMismatchError(
                f"the log joint rejected the guide's samples as outside its support ({e}). Fix: "
                "choose a guide whose support matches the latent's (e.g. Beta for a probability, "
                "LogNormal/Gamma for a positive scale), or transform the guide's samples, e.g. "
                "TransformedDistribution(Normal(...), SigmoidTransform())."
            ) from e
        raise
    if not isinstance(out, torch.Tensor):
        try:
            out = torch.as_tensor(out, dtype=z.dtype if z.is_floating_point() else None)
        except (TypeError, ValueError, RuntimeError) as e:
            raise LogJointError(
                f"the log joint returned {type(out).__name__}, which is not numeric ({e}); it must "
                "return a tensor of log densities."
            ) from e
    want = (n, *item_shape)
    if tuple(out.shape) != want:
        per = "sample" if not item_shape else f"sample and data point {tuple(item_shape)}"
        hint = ""
        if out.numel() == math.prod(want):
            hint = " (it has the right number of values: reshape it, e.g. .squeeze(-1))"
        elif out.dim() > len(want) and tuple(out.shape[: len(want)]) == want:
            hint = " (sum the trailing axes: log densities of independent terms add)"
        raise LogJointError(
            f"the log joint returned shape {tuple(out.shape)} for latents of shape "
            f"{tuple(z.shape)}; it must return one log density per {per}, shape {want}{hint}. "
            "The sample axis of z is the first one."
        )
    bad = torch.isnan(out)
    if bad.any():
        idx = bad.reshape(n, -1).any(1).nonzero().flatten()[:5].tolist()
        raise LogJointError(
            f"the log joint returned NaN for {int(bad.reshape(n, -1).any(1).sum())} of {n} "
            f"samples (first at sample indices {idx}). Fix the model so log p(x, z) is defined on "
            "the guide's whole support: guard log(0) and 0/0 (use log1p, logsigmoid, "
            "torch.xlogy, clamp), or use a guide whose support matches the model's."
        )
    if torch.isinf(out).any():
        pos = bool((out == float("inf")).any())
        raise LogJointError(
            "the log joint returned "
            + ("+inf (a density that is not normalisable there)" if pos else "-inf")
            + f" for some of the {n} samples: "
            + (
                "the guide proposes latents with zero model probability. Fix: match the guide's "
                "support to the model's (see scoregrad.vi.check_support), or keep the model's "
                "log density finite there."
                if not pos
                else "check the model's density."
            )
        )
    return out


def _unwrap(c: constraints.Constraint) -> constraints.Constraint:
    while isinstance(c, constraints.independent):
        c = c.base_constraint
    return c


def _contained(guide_c, model_c) -> bool:
    g, m = _unwrap(guide_c), _unwrap(model_c)
    if m is constraints.real or isinstance(m, type(constraints.real)):
        return True
    if type(g) is not type(m):
        # (0, 1) inside [0, 1], positive inside nonnegative, ...
        inner = {
            (type(constraints.unit_interval), type(constraints.interval(0.0, 1.0))),
            (type(constraints.positive), type(constraints.nonnegative)),
            (type(constraints.boolean), type(constraints.integer_interval(0, 1))),
        }
        return (type(g), type(m)) in inner
    for attr in ("lower_bound", "upper_bound"):
        if hasattr(m, attr):
            gv, mv = getattr(g, attr), getattr(m, attr)
            if not torch.equal(torch.as_tensor(gv), torch.as_tensor(mv)):
                return False
    return True


def check_support(model, q: D.Distribution | Guide, n: int = 16) -> None:
    """Raise ``SupportMismatchError`` if the guide's support is not inside the model's latent
    support (``model.support``, a ``torch.distributions.constraints`` object).

    >>> import torch.distributions as D
    >>> from torch.distributions import constraints
    >>> class M:  support = constraints.unit_interval
    >>> check_support(M(), D.Normal(0.5, 0.1))
    Traceback (most recent call last):
    ...
    scoregrad.vi.errors.SupportMismatchError: the guide Normal has support Real(), ...
    """
    support = getattr(model, "support", None)
    if support is None:
        return
    q = q() if isinstance(q, Guide) else q
    ok = _contained(q.support, support)
    if ok:
        with torch.no_grad():
            z = q.sample((n,))
        ok = bool(support.check(z).all())
    if not ok:
        name = type(q.base_dist if isinstance(q, D.Independent) else q).__name__
        raise SupportMismatchError(
            f"the guide {name} has support {_unwrap(q.support)}, but the model's latent lives "
            f"in {_unwrap(support)}."
            " Fix: choose a guide family on the same set (Beta for (0, 1), Gamma/LogNormal for "
            "(0, ∞), Bernoulli/Categorical for discrete latents), or push the guide through a "
            "transform, e.g. TransformedDistribution(Normal(...), SigmoidTransform())."
        )


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
    out = sum_trailing(q.log_prob(z), keep=keep)
    return out.detach() if fixed else out


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


class ScoreFunctionELBO(ELBOEstimator):
    """The score-function ELBO gradient through ``scoregrad.expectation`` with any core estimator.

    f(z) = log p(x, z) - log q(z) is evaluated at detached samples with log q's parameters held
    fixed (its direct gradient has expectation E[∇φ log q] = 0 and only adds noise); f keeps the
    log joint's graph, so a decoder inside the log joint gets its pathwise gradient, and for
    Bernoulli guides f stays differentiable in z (relaxed samples in [0, 1] work: REBAR, RELAX,
    Gumbel-softmax). For VIMCO (``log_q_graph``, on by default there) log q keeps its graph,
    because the multi-sample bound's pathwise term Σ_k w̃_k ∇φ log w_k has a non-zero mean.
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
            # multi-sample objectives (VIMCO) need ∇φ log w at fixed z: its mean is not zero there
            log_q_graph = getattr(self.estimator, "name", "") == "vimco"
            self.min_n = 2 if log_q_graph else self.min_n
        self.log_q_graph = bool(log_q_graph)

    def __call__(self, log_joint, guide, n, item_shape=(), context=None):
        _check_n(n)
        q = _as_dist(guide)
        keep = 1 + len(tuple(item_shape))
        fixed = not self.log_q_graph

        def f(z):
            return call_log_joint(log_joint, z, tuple(item_shape)) - _log_q(q, z, keep, fixed)

        return expectation(f, q, n, self.estimator, item_shape=tuple(item_shape), context=context)

    def state_dict(self):
        return _estimator_state(self.estimator)

    def load_state_dict(self, state):
        _load_estimator_state(self.estimator, state)

    def __repr__(self):
        return f"ScoreFunctionELBO({self.estimator!r})"


def _loo_baseline_coefficient(f: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Per-sample, per-element Cov(g, s)/Var(s) from the other samples, for g = (f - f̄₋ᵢ) s with
    f of the same shape as s (one learning signal per component): the element-wise form of
    ``scoregrad.control_variates.loo_coefficient``'s (f, s) branch, keeping sample i's f out."""
    n = f.shape[0]
    den = excluding_own_block(s * s, 1)
    f_other = excluding_own_block(f, 1) / (n - 1)
    num = excluding_own_block(f * s * s, 1) - f_other * excluding_own_block(s * s, 1)
    tiny = torch.finfo(den.dtype).tiny
    return torch.where(den > 0, num / den.clamp_min(tiny), torch.zeros_like(den))


class RaoBlackwellELBO(ELBOEstimator):
    """BBVI: Rao-Blackwellised score-function gradient with per-component control variates.

    For a mean-field guide (a ``Guide`` whose parameters each have the latent's shape, one element
    per component), parameter element φ_d gets

        ĝ_d = (1/n) Σ_i [(f_id - b_id) s_id - a_id s_id],   s_id = ∇φ_d log q_d(z_id),
        f_id = log p_d(x, z_i) - log q_d(z_id)

    with log p_d the model's ``log_joint_local(z)`` column d (the terms of log p that involve z_d)
    if the model has one, else the whole log joint. ``baseline`` b (default none) and the
    coefficient a (``control_variate=True``: Cov(f s, s)/Var(s) from the *other* samples,
    ``scoregrad.control_variates.loo_coefficient``) both leave ĝ unbiased. Parameters of another
    shape (shared ones) get the plain score-function term with the whole f.
    Reference: Ranganath, Gerrish, Blei 2014, "Black Box Variational Inference", §3.

    The last step's per-sample gradient terms are kept in ``self.last_terms`` ({name: (n, ...)}).
    """

    name = "rao_blackwell"

    def __init__(self, control_variate: bool = True, baseline: Baseline | None = None):
        self.control_variate = bool(control_variate)
        self.baseline = baseline if baseline is not None else NoBaseline()
        self.min_n = max(2 if self.control_variate else 1, self.baseline.min_units)
        self.last_terms: dict[str, torch.Tensor] | None = None

    def __call__(self, log_joint, guide, n, item_shape=(), context=None):
        _check_n(n)
        if not isinstance(guide, Guide):
            raise EstimatorNotApplicable(
                "RaoBlackwellELBO needs the guide's parameters to give each latent component its "
                "own signal; pass a scoregrad.vi.Guide (e.g. MeanFieldNormal), not a bare "
                "distribution, or use ScoreFunctionELBO."
            )
        if tuple(item_shape):
            raise EstimatorNotApplicable(
                "RaoBlackwellELBO is for global mean-field guides; for amortised guides over data "
                "points use ScoreFunctionELBO with item_shape (its baselines act per data point)."
            )
        if n < self.min_n:
            raise SampleSizeError(
                f"RaoBlackwellELBO with a leave-one-out control variate or baseline needs n >= "
                f"{self.min_n} samples per step, got n={n}. Fix: raise n, or pass "
                "control_variate=False and no leave-one-out baseline."
            )
        params = guide.params()
        model = SampleModel.expand(guide.dist_fn, params, n)
        z = model.sample()
        scores = model.score(z)
        base = guide.dist_fn(**{k: p.detach() for k, p in params.items()})
        with torch.no_grad():
            lq = base.log_prob(z)  # (n, *latent): one column per component
        lp = call_log_joint(log_joint, z)
        lp_d = lp.detach()
        f_full = lp_d - sum_trailing(lq, keep=1)
        local_fn = getattr(log_joint, "log_joint_local", None)
        local = None
        if local_fn is not None:
            local = torch.as_tensor(local_fn(z)).detach()
            if tuple(local.shape) != tuple(lq.shape):
                raise LogJointError(
                    f"log_joint_local returned shape {tuple(local.shape)}; it must give one "
                    f"Markov-blanket log density per sample and component, shape {tuple(lq.shape)}."
                )
        f_comp = (local if local is not None else lp_d.reshape(-1, *[1] * (lq.dim() - 1))) - lq
        grads, terms = {}, {}
        loo = isinstance(self.baseline, LeaveOneOut)
        for k, s in scores.items():
            if tuple(s.shape[: lq.dim()]) == tuple(lq.shape):
                # one parameter row per component (e.g. Categorical logits (D, K))
                fk = f_comp.reshape(*lq.shape, *[1] * (s.dim() - lq.dim()))
            else:  # a shared parameter: the whole learning signal
                fk = f_full.reshape(-1, *[1] * (s.dim() - 1))
            fk = fk.expand_as(s) if fk.shape != s.shape else fk
            b = self.baseline(fk)
            g = (fk - b) * s
            if self.control_variate:
                c = _loo_baseline_coefficient(fk, s) if loo else loo_coefficient(s, 1, g=g)
                g = g - c * s
            terms[k] = g
            grads[k] = g.mean(0)
        self.baseline.update(f_comp)
        self.last_terms = terms
        value = (lp - sum_trailing(lq, keep=1)).mean()
        surrogate = value + sum(
            (grads[k].detach() * (p - p.detach())).sum() for k, p in params.items()
        )
        return surrogate

    def state_dict(self):
        return self.baseline.state_dict()

    def load_state_dict(self, state):
        self.baseline.load_state_dict(state)

    def __repr__(self):
        return (
            f"RaoBlackwellELBO(control_variate={self.control_variate}, baseline={self.baseline!r})"
        )


class PathwiseELBO(ELBOEstimator):
    """Reparameterisation gradient: z = g(ε; φ), ∇φ ELBO = E_ε[∇φ (log p(x, g(ε; φ)) - log q(g))].

    ``stick_the_landing=True`` drops the score part of ∇ log q (zero mean) by evaluating log q with
    detached guide parameters (Roeder, Wu, Duvenaud 2017); it needs a ``Guide``.

    >>> import torch
    >>> from scoregrad.vi import MeanFieldNormal
    >>> guide = MeanFieldNormal(2)
    >>> PathwiseELBO()(lambda z: -(z ** 2).sum(-1), guide, n=8).backward()
    >>> guide.loc.grad.shape
    torch.Size([2])
    """

    name = "pathwise"

    def __init__(self, stick_the_landing: bool = False):
        self.stick_the_landing = stick_the_landing

    def __call__(self, log_joint, guide, n, item_shape=(), context=None):
        _check_n(n)
        q = _as_dist(guide)
        if not q.has_rsample:
            raise EstimatorNotApplicable(
                f"the pathwise ELBO needs a reparameterisable guide, but {type(q).__name__} has no "
                "rsample (discrete latents never do). Fix: use ScoreFunctionELBO (or ARM/DisARM/"
                "REBAR/RELAX for binary latents), or a continuous relaxation."
            )
        keep = 1 + len(tuple(item_shape))
        z = q.rsample((n,))
        if self.stick_the_landing:
            if not isinstance(guide, Guide):
                raise EstimatorNotApplicable(
                    "stick_the_landing needs a scoregrad.vi.Guide (to rebuild q with detached "
                    "parameters)."
                )
            qd = guide.dist_fn(**{k: p.detach() for k, p in guide.params().items()})
            lq = sum_trailing(qd.log_prob(z), keep=keep)  # detached parameters, graph to z
        else:
            lq = _log_q(q, z, keep)
        lp = call_log_joint(log_joint, z, tuple(item_shape))
        return (lp - lq).mean(0).sum()

    def __repr__(self):
        return f"PathwiseELBO(stick_the_landing={self.stick_the_landing})"


def _iw(log_w: torch.Tensor) -> torch.Tensor:
    k = log_w.shape[0]
    return torch.logsumexp(log_w, 0) - math.log(k)


class ImportanceWeightedELBO(ELBOEstimator):
    """The importance-weighted bound with k samples, trained pathwise (IWAE):

        L_k = E[log (1/k) Σ_j p(x, z_j) / q(z_j)],   L_1 = ELBO ≤ L_k ≤ log p(x).

    Each call draws ``n`` independent groups of k samples. Needs a reparameterisable guide (use the
    core's VIMCO estimator for discrete latents). Reference: Burda et al. 2016.
    """

    name = "iwae"

    def __init__(self, k: int = 5):
        if k < 1:
            raise SampleSizeError(f"the importance-weighted bound needs k >= 1 samples, got {k}.")
        self.k = int(k)

    def __call__(self, log_joint, guide, n, item_shape=(), context=None):
        _check_n(n)
        q = _as_dist(guide)
        if not q.has_rsample:
            raise EstimatorNotApplicable(
                f"ImportanceWeightedELBO is pathwise and {type(q).__name__} has no rsample. Fix: "
                "use the VIMCO estimator (scoregrad.estimators) for discrete latents."
            )
        keep = 1 + len(tuple(item_shape))
        z = q.rsample((n * self.k,))
        log_w = call_log_joint(log_joint, z, tuple(item_shape)) - _log_q(q, z, keep)
        log_w = log_w.reshape(self.k, n, *log_w.shape[1:])
        return _iw(log_w).mean(0).sum()

    def __repr__(self):
        return f"ImportanceWeightedELBO(k={self.k})"


@torch.no_grad()
def iw_bound(
    log_joint, guide, k: int, item_shape=(), chunk_size: int = 100, seed: int | None = None
) -> torch.Tensor:
    """log (1/k) Σ_j p(x, z_j)/q(z_j) with z_j ~ q, per item (shape item_shape), no gradients.

    The k samples are drawn in chunks of ``chunk_size`` and merged with a running log-sum-exp, so
    memory is that of one chunk. Its expectation is the k-sample bound L_k; for k = 1000 it is the
    standard "test log-likelihood" estimate of discrete-VAE papers.

    >>> import torch
    >>> log_joint = lambda z: torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    >>> q = torch.distributions.Independent(torch.distributions.Normal(torch.zeros(2), 1.2), 1)
    >>> b = iw_bound(log_joint, q, k=100_000, seed=0)  # log ∫ p = 0 for a normalised p
    >>> abs(float(b)) < 0.01
    True
    """
    q = _as_dist(guide)
    keep = 1 + len(tuple(item_shape))
    gen_ctx = torch.random.fork_rng() if seed is not None else _nullctx()
    with gen_ctx:
        if seed is not None:
            torch.manual_seed(seed)
        acc = None
        done = 0
        while done < k:
            m = min(chunk_size, k - done)
            z = q.sample((m,))
            log_w = call_log_joint(log_joint, z, tuple(item_shape)) - _log_q(q, z, keep)
            lse = torch.logsumexp(log_w, 0)
            acc = lse if acc is None else torch.logaddexp(acc, lse)
            done += m
    return acc - math.log(k)


class _nullctx:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def _configurations(base: D.Distribution) -> torch.Tensor:
    """Every joint configuration of a batched discrete distribution, shape (K^D, *batch)."""
    if not base.has_enumerate_support:
        raise EstimatorNotApplicable(
            f"exact_elbo enumerates the guide's support, but {type(base).__name__} cannot be "
            "enumerated; use a Bernoulli/Categorical/OneHotCategorical guide."
        )
    shape = tuple(base.batch_shape)
    values = base.enumerate_support(expand=False).reshape(-1)  # (K,) for Bernoulli/Categorical
    d = math.prod(shape) if shape else 1
    if values.numel() ** d > 2**20:
        raise EstimatorNotApplicable(
            f"exact_elbo would enumerate {values.numel()}^{d} configurations; keep it below 2^20."
        )
    if d == 1:
        return values.reshape(-1, *shape) if shape else values
    grid = torch.cartesian_prod(*([values] * d))
    return grid.reshape(-1, *shape)


def exact_elbo(log_joint, guide) -> torch.Tensor:
    """Σ_z q(z) (log p(x, z) - log q(z)) over every configuration of a small discrete guide.

    Differentiable in the guide's parameters: its autograd gradient is the exact ELBO gradient,
    the reference for unbiasedness tests of the estimators.

    >>> import torch
    >>> from scoregrad.vi import MeanFieldBernoulli
    >>> g = MeanFieldBernoulli(2)
    >>> round(float(exact_elbo(lambda z: torch.zeros(z.shape[0]), g).detach()), 4)  # = entropy 2 log 2
    1.3863
    """
    q = _as_dist(guide)
    base = q.base_dist if isinstance(q, D.Independent) else q
    z = _configurations(base)
    log_q = sum_trailing(base.log_prob(z), keep=1)
    lp = call_log_joint(log_joint, z)
    return (log_q.exp() * (lp - log_q)).sum()


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
        self.estimator = estimator
        baseline = getattr(estimator, "baseline", None)
        cv = getattr(estimator, "control_variate", None)
        self.min_n = max(getattr(baseline, "min_units", 1), 2 if cv is not None else 1)
        self.last = None

    def __call__(self, log_joint, guide, n, item_shape=(), context=None):
        from ..estimate import estimate_grad

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
