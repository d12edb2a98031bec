"""The structure is real: causality and plates measurably cut the variance, DiCE keeps higher
derivatives right, and malformed graphs get clear errors."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Bernoulli

import scoregrad as sg
from scoregrad.baselines import LeaveOneOut
from scoregrad.testing import assert_close_in_se

from .graphs_exact import Chain


def _variance(est, name):
    return est.variance_per_sample[name]


def test_causality_cuts_the_variance_of_a_later_choice():
    """A large cost that comes before z2 is left out of z2's signal: Var of ∇b drops sharply."""
    a = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)

    def model(g):
        z1 = g.sample("z1", Bernoulli(logits=a), sg.ScoreFunction())
        g.cost("early", 10.0 * z1.sum(-1))
        z2 = g.sample("z2", Bernoulli(logits=b), sg.ScoreFunction())
        g.cost("late", z2.sum(-1))

    params = {"a": a, "b": b}
    full = sg.graphs.estimate_grad(model, params, n=4096, seed=0)
    flat = sg.graphs.estimate_grad(model, params, n=4096, seed=0, causal=False)
    # exact per-sample variances: causal ¼·E[z2²]... ≈ 0.0625 vs flat ≈ 6.3; assert a 20x cut
    assert float(_variance(flat, "b")) > 20 * float(_variance(full, "b"))
    # both unbiased for ∇b = σ'(0) = ¼
    for est in (full, flat):
        assert_close_in_se(est.grad["b"], 0.25, est.stderr["b"], what="grad b")


def test_plates_cut_the_variance_of_each_data_points_choice():
    """With B = 16 data points, each choice sees only its own cost inside the plate."""
    B = 16
    w = torch.zeros(B, 1, dtype=torch.float64, requires_grad=True)
    t = torch.linspace(-1.0, 2.0, B, dtype=torch.float64)

    def model(g):
        data = g.plate("data", B)
        z = g.sample("z", Bernoulli(logits=w), sg.ScoreFunction(), plates=data)
        g.cost("local", (z.squeeze(-1) - t) ** 2, plates=data)

    full = sg.graphs.estimate_grad(model, {"w": w}, n=2048, seed=0)
    flat = sg.graphs.estimate_grad(model, {"w": w}, n=2048, seed=0, plates=False)
    ratio = _variance(flat, "w") / _variance(full, "w")
    assert float(ratio.min()) > 3.0, ratio.flatten().tolist()
    exact = 0.25 * ((1 - t) ** 2 - t**2)
    for est in (full, flat):
        assert_close_in_se(est.grad["w"].squeeze(-1), exact, est.stderr["w"].squeeze(-1), "w")


def test_second_derivative_through_dice():
    """d²/da² of E over the two-choice chain: DiCE surrogate differentiated twice, z-tested over
    independent replicates against the exact Hessian diagonal."""
    ch = Chain()
    a = ch.params["a"]
    value = _exact_value(ch)
    (g,) = torch.autograd.grad(value, a, create_graph=True)
    exact = torch.stack([torch.autograd.grad(g[i], a, retain_graph=True)[0][i] for i in range(2)])
    reps = []
    for seed in range(24):
        loss = sg.graphs.expectation(
            ch.model(sg.ScoreFunction(LeaveOneOut()), sg.ScoreFunction()), n=2000, seed=seed
        )
        (ga,) = torch.autograd.grad(loss, a, create_graph=True)
        h = torch.stack([torch.autograd.grad(ga[i], a, retain_graph=True)[0][i] for i in range(2)])
        reps.append(h.detach())
    reps = torch.stack(reps)
    se = reps.std(0) / len(reps) ** 0.5
    assert_close_in_se(reps.mean(0), exact.detach(), se, what="d2/da2")
    assert float(value.detach()) > 0


def _exact_value(ch):
    import itertools

    v = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)), dtype=torch.float64)
    z1, z2 = v[:, :2], v[:, 2:]
    p = ch.params
    lp = Bernoulli(logits=p["a"]).log_prob(z1).sum(-1)
    lp = lp + Bernoulli(logits=z1 @ p["W"] + p["c"]).log_prob(z2).sum(-1)
    return (lp.exp() * (ch.f1(z1) + torch.as_tensor(ch.f2(z1, z2)))).sum()


def test_first_order_rules_are_declared():
    assert sg.graphs.needs(sg.DisARM()).first_order
    assert sg.graphs.needs(sg.DisARM()).needs_alternatives
    assert sg.graphs.needs(sg.ScoreFunction()).uses_score
    assert not sg.graphs.needs(sg.Pathwise()).needs_alternatives
    assert sg.graphs.needs(sg.GumbelSoftmax()).biased


def _model_with(**kw):
    a = torch.zeros(2, requires_grad=True)

    def model(g):
        z = g.sample("z", Bernoulli(logits=a), kw.get("estimator"))
        g.cost("c", kw.get("cost", lambda z: z.sum(-1))(z), plates=kw.get("plates", ()))

    return model


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"cost": lambda z: z}, "shape"),
        ({"plates": ("data",)}, "not declared"),
        ({"estimator": sg.VIMCO(4)}, "no graph rule"),
        ({"estimator": sg.Pathwise()}, "rsample"),
        ({"estimator": "DisARM"}, "estimator object"),
        ({"cost": lambda z: z.sum(-1) / 0.0}, "non-finite"),
    ],
)
def test_bad_graphs_get_clear_errors(kw, match):
    with pytest.raises(sg.ScoregradError, match=match):
        sg.graphs.expectation(_model_with(**kw), n=4, seed=0)


def test_repeated_names_and_no_costs():
    a = torch.zeros(1, requires_grad=True)

    def twice(g):
        g.sample("z", Bernoulli(logits=a))
        g.sample("z", Bernoulli(logits=a))
        g.cost("c", torch.zeros(g.n))

    with pytest.raises(sg.ScoregradError, match="twice"):
        sg.graphs.expectation(twice, n=4)
    with pytest.raises(sg.ScoregradError, match="no cost"):
        sg.graphs.expectation(lambda g: None, n=4)
    with pytest.raises(sg.ScoregradError, match="positive integer"):
        sg.graphs.expectation(twice, n=0)


def test_enumeration_refuses_a_cost_that_mixes_plate_elements():
    w = torch.zeros(3, 1, requires_grad=True)

    def model(g):
        data = g.plate("data", 3)
        z = g.sample("z", Bernoulli(logits=w), sg.Enumerate(), plates=data)
        g.cost("total", z.sum((-1, -2)) ** 2)  # outside the plate: every element matters

    with pytest.raises(sg.EstimatorNotApplicable, match="element-wise"):
        sg.graphs.expectation(model, n=4, seed=0)


def test_seed_leaves_the_callers_rng_alone():
    before = torch.random.get_rng_state()
    ch = Chain()
    sg.graphs.expectation(ch.model(sg.DisARM(), sg.DisARM()), n=8, seed=3)
    assert bool((torch.random.get_rng_state() == before).all())


def _second_choice_model(a, b, expand=None):
    """z2's logits are a parameter vector of length 6, not built from z1: with n = 6 its first
    axis looks like the sample axis by size alone."""

    def model(g):
        z1 = g.sample("z1", Bernoulli(logits=a))
        z2 = g.sample("z2", Bernoulli(logits=b), expand=expand)
        g.cost("c", z1.sum(-1) + z2.sum(-1))

    return model


def test_a_batch_axis_of_size_n_is_not_taken_for_the_sample_axis():
    a = torch.zeros(1, requires_grad=True)
    b = torch.linspace(-1, 1, 6).requires_grad_()
    with pytest.raises(sg.ScoregradError, match="expand=True"):
        sg.graphs.expectation(_second_choice_model(a, b), n=6, seed=0)
    with pytest.raises(sg.ScoregradError, match="batch axis"):
        sg.graphs.estimate_grad(_second_choice_model(a, b), {"b": b}, n=6, seed=0)
    # declared, it is right: E[Σ z2] = Σ σ(b), d/db = σ'(b); at another n no question arises
    est = sg.graphs.estimate_grad(_second_choice_model(a, b, expand=True), {"b": b}, n=6000, seed=1)
    assert_close_in_se(est.grad["b"], torch.sigmoid(b) * (1 - torch.sigmoid(b)), est.stderr["b"])
    sg.graphs.expectation(_second_choice_model(a, b), n=7, seed=0)


def test_an_inferred_sample_axis_that_is_right_passes_the_probe():
    a = torch.zeros(1, requires_grad=True)
    calls = []

    def model(g):
        calls.append(g.n)
        z1 = g.sample("z1", Bernoulli(logits=a))
        z2 = g.sample("z2", Bernoulli(logits=z1 - 0.5))  # (n, 1): built from z1
        g.cost("c", (z1 + z2).sum(-1))

    before = torch.random.get_rng_state()
    loss = sg.graphs.expectation(model, n=13, seed=0)
    assert calls == [13, 1]  # the probe ran once, with a single sample
    assert bool((torch.random.get_rng_state() == before).all())
    calls.clear()
    again = sg.graphs.expectation(model, n=13, seed=0)
    assert float(again) == float(loss)  # the probe does not move the seeded stream
