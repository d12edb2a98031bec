"""The per-sample DiCE surrogate of one execution of a model, with its structure.

For costs C_k and choices c with log-probabilities L_c (score-function choices only),

    S_i = Σ_k magic(Σ_{c → k} L_c,i) C_k,i  +  Σ_c term_c,i,

with c → k the choices cost k depends on (their plate axes aligned, ``structure.align``) and term_c
each choice's own zero-valued term (baseline, control variate, or the gradient of an estimator
that re-executes the downstream). The mean of S over the samples has the value of the Monte Carlo
estimate of E[Σ_k C_k]; its gradient is the estimator (Foerster et al. 2018; Schulman et al. 2015).
Re-executions replay the choices made before c, set c to each alternative value and draw the rest
afresh, all alternatives in one execution with an m-times larger sample axis.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import torch

from ..dice import magic_box
from ..errors import EstimatorNotApplicable
from .graph import Graph, GraphError
from .structure import Structure, align

__all__ = ["Execution", "execute", "verify_sample_axis"]


@dataclass
class Execution:
    """One execution: the per-sample ``value`` (Σ of the costs, detached) and ``surrogate`` (N,),
    the graph, how many model evaluations were spent (samples × executions) and whether the
    result is biased or first-order only."""

    value: torch.Tensor
    surrogate: torch.Tensor
    graph: Graph
    n_evals: int
    biased: bool
    first_order: bool


def _run(model, graph: Graph) -> Graph:
    out = model(graph)
    if out is not None:
        raise GraphError(
            "the model returned a value; a graph model declares its costs with g.cost(name, value) "
            "and returns None."
        )
    if not graph.costs:
        raise GraphError("the model declared no cost; call g.cost(name, value) at least once.")
    return graph


#: sample sizes of the probe execution (the first that differs from n): one sample is enough, since
#: a choice built from earlier ones then has a leading axis of 1, and a batch axis keeps its size n
PROBE_SIZES = (1, 2)


def verify_sample_axis(model, g: Graph) -> None:
    """Check the choices of ``g`` whose sample axis was inferred from their size: run the model
    once more, without gradients and on a forked RNG (the caller's stream is untouched), with a
    sample size that differs from n. A choice built from earlier choices then has the probe's
    size first; one whose leading axis kept size n is a batch axis that only happened to match n,
    and is refused (it would otherwise have given sample i only element i)."""
    if not g.inferred_axis:
        return
    probe_n = next(k for k in PROBE_SIZES if k != g.n)
    devices = list({c.value.device for c in g.choices.values() if c.value.device.type == "cuda"})
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            probe = _run(model, Graph(probe_n, rerun=True))
    except Exception as e:  # noqa: BLE001 - any failure only means the check could not run
        warnings.warn(
            f"could not verify the sample axis of choices {g.inferred_axis} (a probe execution "
            f"with n={probe_n} raised {type(e).__name__}: {e}); pass expand=False to g.sample "
            "where a distribution already has the sample axis, expand=True where it does not.",
            stacklevel=3,
        )
        return
    wrong = [k for k in g.inferred_axis if k in probe.choices and k not in probe.inferred_axis]
    if wrong:
        shapes = {k: tuple(g.choices[k].dist.batch_shape) for k in wrong}
        raise GraphError(
            f"choice(s) {wrong} have batch shapes {shapes} whose first axis has size n={g.n} but "
            "does not follow the sample size (with another n it stays the same), so it is a batch "
            "axis, not the sample axis. Pass expand=True to g.sample to give them the sample axis "
            "(or expand=False where the first axis really is the sample axis)."
        )


def execute(
    model, n: int, causal: bool = True, plates: bool = True, verify: bool = True
) -> Execution:
    """Run ``model`` once with n samples and build its per-sample surrogate (``verify``: check
    inferred sample axes with ``verify_sample_axis``)."""
    g = _run(model, Graph(n))
    if verify:
        verify_sample_axis(model, g)
    for c in g.choices.values():
        if c.rule.uses_score:
            lp = c.dist.log_prob(c.value)
            keep = 1 + len(c.plates)
            c.log_prob = lp.sum(tuple(range(keep, lp.dim()))) if lp.dim() > keep else lp
    s = Structure(g, causal=causal, plates=plates)
    surrogate = None
    value = None
    for name, k in g.costs.items():
        exponent = None
        for c in (g.choices[a] for a in s.ancestors(name)):
            if not c.rule.uses_score:
                continue
            t = align(c.log_prob, c.plates, k.plates, s.elementwise(c.name, name), s.order)
            exponent = t if exponent is None else exponent + t
        term = k.value if exponent is None else magic_box(exponent) * k.value
        term = _per_sample(term)
        surrogate = term if surrogate is None else surrogate + term
        v = _per_sample(k.value.detach())
        value = v if value is None else value + v
    g.check_finite(value)
    n_evals = n
    for c in g.choices.values():
        downstream = s.downstream(c.name).detach()
        alt = None
        if c.rule.needs_alternatives:
            if c.rule.needs_separable and not s.is_separable(c.name):
                raise EstimatorNotApplicable(
                    f"choice {c.name!r}: {type(c.estimator).__name__} replaces every plate element "
                    "of the choice at once, so each cost must depend on it element-wise along its "
                    f"plates {c.plates}, and some cost does not. Use DisARM or ScoreFunction here."
                )
            alt_values = c.rule.alternatives(c.estimator, c)
            alt = _alternative_downstream(model, g, c, alt_values, causal, plates)
            n_evals += alt_values.shape[0] * n
        elif c.rule.relaxed_downstream(c.estimator):
            _check_relaxable(g, s, c)
            alt = functools.partial(_relaxed_downstream, model, g, c, causal, plates)
            n_evals += 2 * n
        surrogate = surrogate + c.rule.term(c.estimator, c, downstream, alt).to(surrogate)
    rules = [c.rule for c in g.choices.values()]
    return Execution(
        value=value,
        surrogate=surrogate,
        graph=g,
        n_evals=n_evals,
        biased=any(r.biased for r in rules),
        first_order=any(r.first_order for r in rules),
    )


def _per_sample(t: torch.Tensor) -> torch.Tensor:
    return t.sum(tuple(range(1, t.dim()))) if t.dim() > 1 else t


def _alternative_downstream(model, g: Graph, choice, alts, causal, plates) -> torch.Tensor:
    """Σ of the costs downstream of ``choice`` with its value set to each of ``alts`` (m, N, ...):
    one re-execution with sample axis m·N; returns (m, N, *plates), detached."""
    m, n = alts.shape[0], g.n
    replay = {
        u.name: u.value.detach().repeat(m, *([1] * (u.value.dim() - 1)))
        for u in g.choices.values()
        if u.order < choice.order
    }
    replay[choice.name] = alts.reshape(m * n, *alts.shape[2:])
    with torch.no_grad():
        g2 = _run(model, Graph(m * n, replay=replay, rerun=True))
    if choice.name not in g2.choices:
        raise GraphError(
            f"re-executing the model did not make choice {choice.name!r} again; a model must make "
            "the same choices each time it runs (no data-dependent control flow around g.sample)."
        )
    d = Structure(g2, causal=causal, plates=plates).downstream(choice.name)
    g2.check_finite(d)
    return d.reshape(m, n, *d.shape[1:])


def _check_relaxable(g: Graph, s: Structure, choice) -> None:
    name = type(choice.estimator).__name__
    later = [k for k in g.choices if choice.name in s.ancestors(k)]
    if later:
        raise EstimatorNotApplicable(
            f"choice {choice.name!r}: {name} with the relaxed f (REBAR) differentiates the costs "
            f"downstream of it at relaxed values, but the choices {later} are drawn downstream of "
            "it, and a relaxed value cannot be carried through their draws without bias. Use "
            "RELAX() (network control), DisARM or ScoreFunction for this choice."
        )
    if choice.plates and not s.is_separable(choice.name):
        raise EstimatorNotApplicable(
            f"choice {choice.name!r}: {name} with the relaxed f relaxes every plate element at "
            "once, so each cost must depend on it element-wise along its plates, and some cost "
            "does not. Use RELAX() or DisARM here."
        )


def _relaxed_downstream(model, g: Graph, choice, causal, plates, relaxed) -> torch.Tensor:
    """Σ of the costs downstream of ``choice`` with its value set to each of ``relaxed``
    (m, N, ...) values in (0, 1): one re-execution with sample axis m·N, every other choice
    replayed, with gradients (REBAR's relaxed f); returns (m, N, *plates)."""
    m, n = relaxed.shape[0], g.n
    replay = {
        u.name: u.value.detach().repeat(m, *([1] * (u.value.dim() - 1)))
        for u in g.choices.values()
        if u.name != choice.name
    }
    replay[choice.name] = relaxed.reshape(m * n, *relaxed.shape[2:])
    name = type(choice.estimator).__name__
    try:
        g2 = _run(model, Graph(m * n, replay=replay, rerun=True, relaxed=choice.name))
        d = Structure(g2, causal=causal, plates=plates).downstream(choice.name)
    except (ValueError, RuntimeError, TypeError, IndexError) as e:
        raise EstimatorNotApplicable(
            f"choice {choice.name!r}: {name} evaluates the costs downstream of it at relaxed "
            f"values in (0, 1), which failed: {e}. Use RELAX() without relaxed_f, DisARM or "
            "ScoreFunction, which only evaluate the model at its draws."
        ) from e
    if not d.requires_grad:
        raise EstimatorNotApplicable(
            f"choice {choice.name!r}: {name} needs the costs downstream of it differentiable in "
            "its value, but they do not depend differentiably on it (a black box, or a detach). "
            "Use RELAX() without relaxed_f, DisARM or ScoreFunction."
        )
    g2.check_finite(d)
    return d.reshape(m, n, *d.shape[1:])
