"""BBVI: the Rao-Blackwellised score-function ELBO gradient with per-component control variates
(Ranganath, Gerrish, Blei 2014, §3)."""

from __future__ import annotations

import torch

from ...baselines import Baseline, LeaveOneOut, NoBaseline
from ...core import SampleModel, broadcast_rows, loo_coefficient, sum_trailing
from ...errors import EstimatorNotApplicable, SampleSizeError
from ..errors import LogJointError
from ..guides import Guide
from .base import ELBOEstimator, _check_n
from .checks import call_log_joint


class RaoBlackwellELBO(ELBOEstimator):
    """BBVI: Rao-Blackwellised score-function gradient with per-component control variates.

    For a mean-field guide (a ``Guide`` whose parameters each have the latent's shape, one element
    per component), parameter element φ_d gets

        ĝ_d = (1/n) Σ_i [(f_id - b_id) s_id - a_id s_id],   s_id = ∇φ_d log q_d(z_id),
        f_id = log p_d(x, z_i) - log q_d(z_id)

    with log p_d the model's ``log_joint_local(z)`` column d (the terms of log p that involve z_d)
    if the model has one, else the whole log joint. ``baseline`` b (default none) and the
    coefficient a (``control_variate=True``: Cov(f s, s)/Var(s) from the *other* samples,
    ``scoregrad.core.loo.loo_coefficient``) both leave ĝ unbiased. Parameters of another
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
        f_comp = (local if local is not None else broadcast_rows(lp_d, lq)) - lq
        grads, terms = {}, {}
        loo = isinstance(self.baseline, LeaveOneOut)
        for k, s in scores.items():
            if tuple(s.shape[: lq.dim()]) == tuple(lq.shape):
                # one parameter row per component (e.g. Categorical logits (D, K))
                fk = broadcast_rows(f_comp, s)
            else:  # a shared parameter: the whole learning signal
                fk = broadcast_rows(f_full, s)
            fk = fk.expand_as(s) if fk.shape != s.shape else fk
            b = self.baseline(fk)
            g = (fk - b) * s
            if self.control_variate:
                c = loo_coefficient(s, 1, f=fk, s=s) if loo else loo_coefficient(s, 1, g=g)
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
