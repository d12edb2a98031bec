"""How each estimator handles one choice of a graph: a rule per estimator class, registered.

A rule *declares* what its estimator needs from the graph (no isinstance chains decide it):

* ``uses_score``: the choice's log-probability enters the DiCE magic box of every cost downstream
  of it (the score function; exact to every order of derivative).
* ``needs_alternatives``: the estimator needs the downstream cost at other values of the choice
  (ARM/DisARM's antithetic partner, measure-valued sides, every point of an enumerated support);
  the graph re-executes the model with the choice's value replaced, vectorised over the sample
  axis (``alternatives`` gives the values, shape (m, N, ...)).
* ``needs_separable``: those re-executions replace every plate element of the choice at once, which
  is right only when each cost depends element-wise on the choice along its plates.
* ``relaxed_downstream(estimator)``: the estimator differentiates the downstream costs at relaxed
  (continuous) values of the choice (REBAR's η F(σ(z/λ))): the graph re-executes the model with
  gradients at those values (``alternatives`` is then a function of them), which is right only
  when no other random choice lies downstream of this one and the costs are differentiable.
* ``first_order``: its gradient term is right for first derivatives only.
* ``biased``: a relaxation, labelled in results.
* ``reparameterised``: the value carries the graph to the parameters (pathwise, relaxations), so
  ``g.log_prob(name)`` keeps its direct gradient; for every other choice it is detached, since
  E[∇ log q(z)] = 0 and the estimator already carries the gradient through q (Pyro drops the same
  term for non-reparameterised sites).

Rules are registered per estimator class with ``register_choice_rule`` (looked up along the MRO,
like ``torch.distributions.kl.register_kl``), so a new estimator joins graphs by registering one.

Each rule gives ``draw(estimator, dist) -> (value, state)`` for the main execution, ``redraw`` for
re-executions, and ``term(estimator, choice, downstream, alternatives) -> (N,)``: a per-sample
surrogate term of value zero whose gradient is the estimator's gradient through this choice's
distribution (downstream: the detached sum of the costs that depend on the choice, on its plate
axes; alternatives: the same at each alternative value, (m, N, *plates)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributions as D

from ..dice import magic_box
from ..errors import EstimatorNotApplicable
from ..estimators import (
    ARM,
    RELAX,
    DisARM,
    Enumerate,
    GumbelSoftmax,
    MeasureValued,
    Pathwise,
    ScoreFunction,
)
from ..estimators.enumerate import joint_support
from ..estimators.rebar import conditional_logistic
from ..estimators.relaxed import relaxed_sample

__all__ = ["ChoiceRule", "register_choice_rule", "rule_for", "needs"]


def _sum_rest(t: torch.Tensor, keep: int) -> torch.Tensor:
    """Sum t (N, *plates, *rest) over the axes after the first ``keep``."""
    return t.sum(tuple(range(keep, t.dim()))) if t.dim() > keep else t


def _per_element(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Broadcast v (N, *plates) against like (N, *plates, *rest)."""
    return v.reshape(*v.shape, *([1] * (like.dim() - v.dim())))


def _bernoulli(choice_or_dist, estimator) -> D.Bernoulli:
    d = choice_or_dist
    while isinstance(d, D.Independent):
        d = d.base_dist
    if not isinstance(d, D.Bernoulli):
        raise EstimatorNotApplicable(
            f"{type(estimator).__name__} in a graph takes Bernoulli choices, got {type(d).__name__}. "
            "Use ScoreFunction (any family), Enumerate (small discrete supports) or Pathwise."
        )
    return d


def _zero(choice) -> torch.Tensor:
    ref = choice.log_prob if choice.log_prob is not None else choice.value
    dtype = ref.dtype if ref.is_floating_point() else torch.get_default_dtype()
    return torch.zeros(choice.value.shape[0], dtype=dtype, device=choice.value.device)


@dataclass(frozen=True)
class ChoiceRule:
    """Base rule (see the module docstring)."""

    uses_score: bool = False
    needs_alternatives: bool = False
    needs_separable: bool = False
    first_order: bool = False
    biased: bool = False
    reparameterised: bool = False

    def check(self, estimator, dist) -> None:
        """Raise before anything is drawn if the estimator cannot handle ``dist`` in a graph."""

    def draw(self, estimator, dist):
        return dist.sample(), None

    def redraw(self, estimator, dist):
        return dist.sample()

    def alternatives(self, estimator, choice) -> torch.Tensor:
        raise NotImplementedError

    def relaxed_downstream(self, estimator) -> bool:
        return False

    def term(self, estimator, choice, downstream, alternatives) -> torch.Tensor:
        return _zero(choice)


_RULES: dict[type, ChoiceRule] = {}


def register_choice_rule(estimator_cls: type):
    """Register the graph rule of an estimator class (decorates a ChoiceRule subclass)."""

    def deco(rule_cls):
        _RULES[estimator_cls] = rule_cls()
        return rule_cls

    return deco


def _lookup(estimator) -> ChoiceRule | None:
    for cls in type(estimator).__mro__:
        if cls in _RULES:
            return _RULES[cls]
    return None


def needs(estimator) -> ChoiceRule:
    """The declared needs of ``estimator`` in a graph (its registered rule)."""
    rule = _lookup(estimator)
    if rule is None:
        known = ", ".join(sorted(c.__name__ for c in _RULES))
        raise EstimatorNotApplicable(
            f"{type(estimator).__name__} has no graph rule, so it cannot handle one choice of a "
            f"graph (multi-sample objectives such as VIMCO act on a whole objective). Estimators "
            f"with a rule: {known}; add one with scoregrad.graphs.register_choice_rule."
        )
    return rule


def rule_for(estimator, dist):
    """(estimator, its rule) for one choice; the default estimator is ``ScoreFunction()``."""
    if estimator is None:
        estimator = ScoreFunction()
    if isinstance(estimator, type) or isinstance(estimator, str):
        raise EstimatorNotApplicable(
            f"estimator must be an estimator object such as sg.DisARM(), got {estimator!r}."
        )
    rule = needs(estimator)
    rule.check(estimator, dist)
    return estimator, rule


# --- the score function ---------------------------------------------------------------------------


@register_choice_rule(ScoreFunction)
@dataclass(frozen=True)
class ScoreRule(ChoiceRule):
    """DiCE: magic(log p) multiplies every downstream cost; the baseline b of the choice's
    downstream cost enters as (1 - magic(log p)) b (Mao et al. 2019), a fixed-coefficient control
    variate h with known mean as -c (magic(log p) h - E[h])."""

    uses_score: bool = True

    def check(self, estimator, dist):
        cv = estimator.control_variate
        if cv is not None and cv.coefficient == "loo":
            raise EstimatorNotApplicable(
                "a graph takes control variates with a known mean and a fixed number as "
                "coefficient (UserControlVariate(h, mean, coefficient=1.0)); 'loo' coefficients "
                "and the delta method need f itself. Use a baseline (LeaveOneOut, Learned) instead."
            )
        if estimator.sampler.block_size(2) != 1:
            raise EstimatorNotApplicable(
                f"graphs draw each choice i.i.d.; the {type(estimator.sampler).__name__} sampler "
                "couples samples. Use the default IID sampler in a graph, or estimate this single "
                "distribution with scoregrad.estimate_grad."
            )

    def draw(self, estimator, dist):
        estimator.check(dist.batch_shape[0])
        return dist.sample(), None

    def term(self, estimator, choice, downstream, alternatives):
        lp = choice.log_prob
        box = magic_box(lp)
        signal = downstream
        out = _zero(choice)
        cv = estimator.control_variate
        if cv is not None:
            if choice.plates:
                raise EstimatorNotApplicable(
                    f"choice {choice.name!r}: control variates give one h per sample, so they "
                    "apply to choices outside plates; use a baseline inside a plate."
                )
            c = float(cv.coefficient)
            try:
                h, mean = cv.functions(choice.value, None, choice.dist)
            except TypeError as e:
                raise EstimatorNotApplicable(
                    f"choice {choice.name!r}: {type(cv).__name__} needs f itself, which a graph "
                    "does not have for one choice; use UserControlVariate(h, mean) or a baseline."
                ) from e
            h = h.to(lp)
            # mean(dist) sees the distribution expanded over the sample axis, so it is the sum
            # of every sample's E[h]: spread evenly, its gradient stays that of the batch mean
            n = lp.shape[0]
            moved = 0.0 if mean is None else (mean - mean.detach()) / n
            out = out - c * (box * h - h.detach() - moved)
            signal = signal - c * h.detach()
        b = estimator.baseline(signal, block=1, context=choice.context)
        out = out + _sum_rest((1.0 - box) * b.to(lp), 1)
        estimator.baseline.update(signal, choice.context)
        return out


# --- pathwise and relaxations ---------------------------------------------------------------------


@register_choice_rule(Pathwise)
@dataclass(frozen=True)
class PathwiseRule(ChoiceRule):
    """x = rsample(): the costs' own graph carries the gradient (no score term)."""

    reparameterised: bool = True

    def check(self, estimator, dist):
        if not dist.has_rsample:
            raise EstimatorNotApplicable(
                f"Pathwise needs a reparameterised sampler, and {type(dist).__name__} has no "
                "rsample. Use ScoreFunction, or Enumerate/DisARM for discrete choices."
            )

    def draw(self, estimator, dist):
        return dist.rsample(), None


@register_choice_rule(GumbelSoftmax)
@dataclass(frozen=True)
class RelaxedRule(ChoiceRule):
    """A relaxed (Concrete) sample, straight-through if asked; biased for the discrete objective."""

    biased: bool = True
    reparameterised: bool = True

    def draw(self, estimator, dist):
        return self.redraw(estimator, dist), None

    def redraw(self, estimator, dist):
        return relaxed_sample(dist, estimator.temperature, hard=estimator.straight_through)


# --- estimators that re-execute the downstream --------------------------------------------------


@register_choice_rule(ARM)
@dataclass(frozen=True)
class PairRule(ChoiceRule):
    """ARM / DisARM: b = 1[u < σ(θ)] drawn in the main execution, its antithetic partner
    b̃ = 1[1 - u < σ(θ)] in a re-execution; the estimator's own formula turns f(b), f(b̃) into
    a gradient with respect to the logits."""

    needs_alternatives: bool = True
    first_order: bool = True

    def check(self, estimator, dist):
        _bernoulli(dist, estimator)

    def draw(self, estimator, dist):
        logits = _bernoulli(dist, estimator).logits.detach()
        u = torch.rand(logits.shape, dtype=logits.dtype, device=logits.device)
        p = torch.sigmoid(logits)
        b, b_tilde = (u < p).to(logits.dtype), (1.0 - u < p).to(logits.dtype)
        return b.reshape(dist.sample().shape), (u, b, b_tilde)

    def alternatives(self, estimator, choice):
        _, _, b_tilde = choice.state
        return b_tilde.reshape(choice.value.shape).unsqueeze(0)

    def term(self, estimator, choice, downstream, alternatives):
        u, b, b_tilde = choice.state
        logits = choice.base.logits
        f_b, f_bt = downstream, alternatives[0]
        g = estimator.logit_grad(u, b, b_tilde, logits.detach(), f_b, f_bt)
        return _sum_rest(g * (logits - logits.detach()), 1)


register_choice_rule(DisARM)(PairRule)


@register_choice_rule(Enumerate)
@dataclass(frozen=True)
class EnumerateRule(ChoiceRule):
    """Σ_s ∇p(s) F(s) over the choice's support (per plate element), F(s) from a re-execution with
    the choice set to s: the exact expectation over this choice given the rest."""

    needs_alternatives: bool = True
    needs_separable: bool = True
    first_order: bool = True

    def check(self, estimator, dist):
        if not getattr(dist, "has_enumerate_support", False) and not getattr(
            getattr(dist, "base_dist", None), "has_enumerate_support", False
        ):
            joint_support(dist)  # raises the estimator's own error

    def alternatives(self, estimator, choice):
        lead = 1 + len(choice.plates)
        support = joint_support(choice.base, lead_dims=lead, max_support=estimator.max_support)
        m = support.shape[0]
        shape = choice.value.shape
        return support.reshape(m, *([1] * lead), *support.shape[1:]).expand(m, *shape)

    def term(self, estimator, choice, downstream, alternatives):
        lead = 1 + len(choice.plates)
        support = self.alternatives(estimator, choice)
        w = _sum_rest(choice.base.log_prob(support), 1 + lead).exp()  # (m, N, *plates)
        return _sum_rest(((w - w.detach()) * alternatives).sum(0), 1)


@register_choice_rule(MeasureValued)
@dataclass(frozen=True)
class MeasureValuedRule(ChoiceRule):
    """Weak derivatives c (p⁺ - p⁻) from the ``register_mvd`` registry: element j's derivative
    replaces element j of the choice by its positive and negative draws (every plate element at
    once) in re-executions."""

    needs_alternatives: bool = True
    needs_separable: bool = True
    first_order: bool = True

    def check(self, estimator, dist):
        estimator.weak_derivative(dist)

    def _parts(self, estimator, choice):
        if choice.state is None:
            rule = estimator.weak_derivative(choice.dist)
            base = choice.base
            values = {k: getattr(base, k).detach() for k in rule.params}
            for k, v in values.items():
                if tuple(v.shape) != tuple(base.batch_shape):
                    raise EstimatorNotApplicable(
                        f"MeasureValued in a graph needs parameters shaped like the batch; "
                        f"{type(base).__name__}.{k} has shape {tuple(v.shape)}. Use Enumerate "
                        "or ScoreFunction for this choice."
                    )
            x = choice.value.reshape(base.batch_shape)
            choice.state = (rule, rule.decompose(values, x, estimator.coupling))
        return choice.state

    def alternatives(self, estimator, choice):
        rule, parts = self._parts(estimator, choice)
        x = choice.value
        n, plates = x.shape[0], len(choice.plates)
        p_size = math.prod(x.shape[1 : 1 + plates])
        d = math.prod(x.shape[1 + plates :])
        flat = x.reshape(n, p_size, d)
        eye = torch.eye(d, dtype=torch.bool, device=x.device).reshape(d, 1, 1, d)
        alts = []
        for name in rule.params:
            for side in (parts[name].positive, parts[name].negative):
                if side is not None:
                    vals = side.reshape(n, p_size, d).to(flat.dtype)
                    alts.append(torch.where(eye, vals.unsqueeze(0), flat.unsqueeze(0)))
        return torch.cat(alts).reshape(-1, *x.shape)

    def term(self, estimator, choice, downstream, alternatives):
        rule, parts = self._parts(estimator, choice)
        x = choice.value
        plates = len(choice.plates)
        d = math.prod(x.shape[1 + plates :])
        alt = alternatives.reshape(-1, d, *alternatives.shape[1:])  # (sides, d, N, *plates)
        alt = alt.movedim(1, -1).reshape(alt.shape[0], *x.shape)  # element j's value at j
        main = _per_element(downstream, x).expand(x.shape)
        out, i = _zero(choice), 0
        base = choice.base
        for name in rule.params:
            sides = []
            for side in (parts[name].positive, parts[name].negative):
                if side is None:
                    sides.append(main)
                else:
                    sides.append(alt[i])
                    i += 1
            g = parts[name].constant.reshape(x.shape) * (sides[0] - sides[1])
            t = getattr(base, name).reshape(x.shape)
            out = out + _sum_rest(g * (t - t.detach()), 1)
        return out


# --- RELAX ----------------------------------------------------------------------------------------


@register_choice_rule(RELAX)
@dataclass(frozen=True)
class RelaxRule(ChoiceRule):
    """RELAX with a learned control r(z) on the choice's logistic variables z (Grathwohl et al.
    2018): ĝ = [F(b) - r(z̃)] ∇log p(b) + ∇r(z) - ∇r(z̃), with F the downstream cost; the control is
    trained to minimise Σ ĝ² after each estimate, on the estimator object."""

    first_order: bool = True

    def check(self, estimator, dist):
        _bernoulli(dist, estimator)

    def relaxed_downstream(self, estimator) -> bool:
        return bool(estimator.relaxed_f)

    def draw(self, estimator, dist):
        base = _bernoulli(dist, estimator)
        logits = base.logits.detach()
        eps = torch.finfo(logits.dtype).eps
        u = torch.rand(logits.shape, dtype=logits.dtype, device=logits.device).clamp(eps, 1 - eps)
        v = torch.rand(logits.shape, dtype=logits.dtype, device=logits.device).clamp(eps, 1 - eps)
        b = (logits + torch.logit(u) > 0).to(logits.dtype)
        return b.reshape(dist.sample().shape), (u, v, b)

    def term(self, estimator, choice, downstream, alternatives):
        """``alternatives``: with the relaxed f, the function that re-executes the downstream
        costs at relaxed values (m, N, *batch) -> (m, N, *plates), with gradients."""
        u, v, b = choice.state
        logits = choice.base.logits
        estimator.prepare_control(logits)
        items = len(choice.plates)
        shape = choice.value.shape
        with torch.enable_grad():
            L = logits.detach().requires_grad_()
            z = L + torch.logit(u)
            z_t = conditional_logistic(L, b, v)
            c_z = c_zt = 0.0
            net = estimator.control
            if net is not None:
                dtype = estimator.control_dtype(z)
                c_z = net(z.to(dtype), items).to(z.dtype)
                c_zt = net(z_t.to(dtype), items).to(z.dtype)
            if estimator.relaxed_f:  # η F(σ(z/λ)): F the downstream costs, re-executed
                lam = estimator.log_temperature.exp()
                relaxed = torch.sigmoid(torch.stack([z, z_t]) / lam).reshape(2, *shape)
                f_z, f_zt = alternatives(relaxed)
                c_z = c_z + estimator.eta * f_z
                c_zt = c_zt + estimator.eta * f_zt
            train = estimator.train and len(estimator.control_parameters()) > 0
            (dc,) = torch.autograd.grad(_total(c_z - c_zt), L, create_graph=train)
            g = _per_element(downstream - c_zt, L) * (b - torch.sigmoid(L.detach())) + dc
        if train:
            estimator.control_step(g)
        return _sum_rest(g.detach() * (logits - logits.detach()), 1)


def _total(t) -> torch.Tensor:
    return t.sum() if isinstance(t, torch.Tensor) else torch.as_tensor(t)
