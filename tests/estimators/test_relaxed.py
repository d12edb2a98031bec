"""Gumbel-softmax / Concrete and straight-through: biased, and the bias is measurable.

False-alarm rates: each z-test uses |z| < 4.42 (1e-5 per component, fixed seeds); the tests that
*detect* bias require |z| > 10 where the bias is large, which an unbiased estimator would reach
with probability < 1e-20.
"""

import pytest
import torch
import torch.distributions as D

import scoregrad as sg
from scoregrad.problems import bernoulli_toy
from scoregrad.testing import Z_CRIT


def test_bias_is_detected_on_the_relax_toy_and_shrinks_with_temperature():
    prob = bernoulli_toy(t=0.2, logits=(0.5,))
    params = prob.params()
    _, exact = prob.exact(params)
    biases = {}
    for lam in (2.0, 0.1):
        est = sg.estimate_grad(
            prob.f, prob.dist_fn, params, n=100_000, estimator=sg.GumbelSoftmax(lam), seed=0
        )
        z = est.z_scores(exact)["logits"]
        biases[lam] = float((est.grad["logits"] - exact["logits"]).abs())
        if lam == 2.0:
            assert z.abs() > 10  # a hot relaxation is far off
    assert biases[0.1] < biases[2.0]


def test_straight_through_value_is_unbiased_and_gradient_biased():
    prob = bernoulli_toy(t=0.2, logits=(0.5, -1.0))
    params = prob.params()
    value, exact = prob.exact(params)
    est = sg.estimate_grad(
        prob.f, prob.dist_fn, params, n=100_000, estimator=sg.StraightThrough(1.0), seed=1
    )
    assert abs(float(est.value - value)) < Z_CRIT * float(est.value_stderr)
    assert est.z_scores(exact)["logits"].abs().max() > 10


def test_categorical_one_hot_and_surrogate():
    costs = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    logits = torch.tensor([0.1, 0.4, -0.3], dtype=torch.float64, requires_grad=True)
    for est in (sg.GumbelSoftmax(0.3), sg.StraightThrough()):
        loss = sg.expectation(
            lambda y: y @ costs, D.Categorical(logits=logits), n=1000, estimator=est, seed=0
        )
        (g,) = torch.autograd.grad(loss, logits)
        e = sg.estimate_grad(
            lambda y: y @ costs,
            lambda logits: D.Categorical(logits=logits),
            {"logits": logits},
            n=1000,
            estimator=est,
            seed=0,
        )
        assert g.shape == (3,) and e.grad["logits"].shape == (3,)
        assert torch.isfinite(e.stderr["logits"]).all()
    # the straight-through forward pass hands f exact one-hot vectors
    seen = []
    sg.estimate_grad(
        lambda y: seen.append(y.detach()) or y @ costs,
        lambda logits: D.Categorical(logits=logits),
        {"logits": logits},
        n=50,
        estimator=sg.StraightThrough(),
        seed=0,
    )
    assert torch.equal(seen[0].sum(-1), torch.ones(50, dtype=torch.float64))
    assert set(seen[0].flatten().tolist()) <= {0.0, 1.0}


def test_not_applicable():
    mu = torch.tensor(0.0, requires_grad=True)
    with pytest.raises(sg.EstimatorNotApplicable, match="Bernoulli or Categorical"):
        sg.estimate_grad(
            lambda x: x, lambda mu: D.Normal(mu, 1.0), {"mu": mu}, n=8, estimator=sg.GumbelSoftmax()
        )
    theta = torch.zeros(2, requires_grad=True)
    with pytest.raises(sg.EstimatorNotApplicable, match="DisARM"):
        sg.estimate_grad(
            lambda b: (b > 0.5).float().sum(-1),
            lambda theta: D.Bernoulli(logits=theta),
            {"theta": theta},
            n=8,
            estimator=sg.GumbelSoftmax(),
        )
    with pytest.raises(ValueError, match="temperature"):
        sg.GumbelSoftmax(0.0)
