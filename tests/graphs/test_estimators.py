"""Every per-choice estimator in a graph, z-tested against gradients computed exactly.

|z| < 4.42 per component (scoregrad.testing): a chain where one choice depends on another, a choice
inside a plate next to a global one, and a continuous choice feeding a discrete one.
"""

from __future__ import annotations

import pytest
import torch

import scoregrad as sg
from scoregrad.baselines import Learned, LeaveOneOut, MovingAverage
from scoregrad.control_variates import UserControlVariate
from scoregrad.testing import assert_grad_unbiased, assert_value_unbiased

from .graphs_exact import Chain, Continuous, Plated

DISCRETE = {
    "score": lambda: sg.ScoreFunction(),
    "score_loo": lambda: sg.ScoreFunction(LeaveOneOut()),
    "score_moving_average": lambda: sg.ScoreFunction(MovingAverage()),
    "arm": lambda: sg.ARM(),
    "disarm": lambda: sg.DisARM(),
    "measure_valued": lambda: sg.MeasureValued(),
    "enumerate": lambda: sg.Enumerate(),
    "relax": lambda: sg.RELAX(),
}


def _check(problem, e1, e2, n, seed=0):
    value, grad = problem.exact()
    est = sg.graphs.estimate_grad(problem.model(e1, e2), problem.params, n=n, seed=seed)
    assert_grad_unbiased(est, grad, what=f"{e1!r}, {e2!r}")
    assert_value_unbiased(est, value, what=f"{e1!r}, {e2!r}")
    return est


@pytest.mark.parametrize("name", list(DISCRETE))
def test_chain_each_estimator(name):
    """Both choices of the chain (z2 depends on z1) with the same estimator."""
    make = DISCRETE[name]
    _check(Chain(), make(), make(), n=2048)


@pytest.mark.parametrize("first", ["disarm", "enumerate", "score_loo"])
@pytest.mark.parametrize("second", ["score_loo", "measure_valued", "relax"])
def test_chain_mixed_estimators(first, second):
    _check(Chain(), DISCRETE[first](), DISCRETE[second](), n=1536, seed=1)


@pytest.mark.parametrize("name", list(DISCRETE))
def test_plate_each_estimator(name):
    """A global choice and a choice inside a plate of 3, each with the estimator."""
    make = DISCRETE[name]
    _check(Plated(), make(), make(), n=2048)


def test_plate_learned_baseline_from_the_choice_inputs():
    """NVIL: a baseline learned from the choice's inputs, per plate element."""
    p = Plated()
    net = torch.nn.Linear(2, 1).double()
    est = sg.ScoreFunction(Learned(net, lr=0.05))
    w = p.params["w"]

    def model(g):  # the same model, with the logits of z as the baseline's context
        g.plate("data", p.B)
        zg = g.sample("zg", torch.distributions.Bernoulli(logits=p.params["a"]), sg.DisARM())
        g.cost("global", p.glob(zg))
        logits = w + p.params["v"] * zg.unsqueeze(-1)
        z = g.sample(
            "z", torch.distributions.Bernoulli(logits=logits), est, plates="data",
            context=logits.detach(),
        )  # fmt: skip
        g.cost("local", p.local(z, zg), plates="data")

    for _ in range(3):  # let the baseline learn a little; each estimate stays unbiased
        sg.graphs.estimate_grad(model, p.params, n=256, seed=5)
    value, grad = p.exact()
    out = sg.graphs.estimate_grad(model, p.params, n=2048, seed=2)
    assert_grad_unbiased(out, grad, what="learned baseline")


def test_control_variate_with_known_mean():
    """A fixed-coefficient control variate h(z) = Σ z with E[h] = Σ σ(a), on the root choice."""
    ch = Chain()
    cv = UserControlVariate(lambda z: z.sum(-1), lambda d: d.mean.sum(), coefficient=0.5)
    _check(ch, sg.ScoreFunction(LeaveOneOut(), control_variate=cv), sg.DisARM(), n=2048)


@pytest.mark.parametrize(
    "ex,ez",
    [
        ("pathwise", "disarm"),
        ("pathwise", "score_loo"),
        ("pathwise", "enumerate"),
        ("score_loo", "disarm"),
        ("measure_valued", "score_loo"),
        ("measure_valued", "relax"),
    ],
)
def test_continuous_then_discrete(ex, ez):
    """x ~ Normal feeds z ~ Bernoulli(kx + c): pathwise gradients flow through the discrete
    choice's estimator into μ and σ."""
    first = {
        "pathwise": sg.Pathwise,
        "score_loo": lambda: sg.ScoreFunction(LeaveOneOut()),
        "measure_valued": sg.MeasureValued,
    }[ex]()
    _check(Continuous(), first, DISCRETE[ez](), n=2048)


def test_enumerate_alone_is_exact_in_both_doors():
    p = Chain()
    theta = p.params["a"]

    def f(z):
        return p.f1(z)

    est = sg.estimate_grad(f, lambda a: torch.distributions.Bernoulli(logits=a), {"a": theta},
                           n=5, estimator=sg.Enumerate())  # fmt: skip
    probs = torch.sigmoid(theta.detach())
    exact = probs * (1 - probs) * ((1 - 0.3) ** 2 - 0.3**2)
    torch.testing.assert_close(est.grad["a"], exact)
    assert float(est.stderr["a"].abs().max()) == 0.0
    loss = sg.expectation(f, torch.distributions.Bernoulli(logits=theta), n=1,
                          estimator=sg.Enumerate())  # fmt: skip
    (g,) = torch.autograd.grad(loss, theta)
    torch.testing.assert_close(g, exact)


def test_relaxation_is_labelled_biased():
    p = Plated()
    with pytest.warns(UserWarning, match="biased"):
        est = sg.graphs.estimate_grad(
            p.model(sg.GumbelSoftmax(0.5), sg.GumbelSoftmax(0.5)), p.params, n=64, seed=0
        )
    assert "biased" in est.estimator


def test_rebar_on_the_last_choice_in_a_plate_and_after_a_continuous_one():
    """REBAR (the relaxed f as control) where no random choice lies downstream of its choice:
    the graph re-executes the costs at the relaxed values, with gradients."""
    _check(Plated(), sg.DisARM(), sg.REBAR(), n=2048, seed=2)
    _check(Continuous(), sg.Pathwise(), sg.REBAR(), n=2048, seed=3)
    _check(Continuous(), sg.ScoreFunction(LeaveOneOut()), sg.RELAX(relaxed_f=True), n=2048)


def test_rebar_refuses_what_it_cannot_relax():
    with pytest.raises(sg.EstimatorNotApplicable, match="drawn downstream"):
        _check(Chain(), sg.REBAR(), sg.DisARM(), n=64)
    with pytest.raises(sg.EstimatorNotApplicable, match="differentiabl|failed"):
        _check(Chain(), sg.DisARM(), sg.REBAR(), n=64)  # c2 is a NumPy black box
