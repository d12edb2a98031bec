"""The VI models on the graph API: the two-layer SBN's per-layer estimators and the Bayesian
Gaussian mixture's graph, z-tested against gradients computed exactly (|z| < 4.42 per component)."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.distributions as D

import scoregrad as sg
from scoregrad.testing import assert_grad_unbiased
from scoregrad.vi.data import load_dataset
from scoregrad.vi.models.gmm import BayesianGaussianMixture, GaussianMixture, fit_gmm
from scoregrad.vi.models.sbn2 import SBN2, layer_estimators, train2


def _tiny_sbn():
    with torch.random.fork_rng():
        torch.manual_seed(3)
        m = SBN2(x_dim=6, h1=2, h2=2).double()
        x = torch.bernoulli(torch.full((3, 6), 0.4, dtype=torch.float64))
    return m, x


def _exact_elbo(m: SBN2, x):
    bits = torch.tensor(list(itertools.product([0.0, 1.0], repeat=2)), dtype=torch.float64)
    z1 = bits[:, None, None, :].expand(4, 4, x.shape[0], 2)
    z2 = bits[None, :, None, :].expand(4, 4, x.shape[0], 2)
    q1, q2 = m.q1(x), m.q2(z1)
    lq = q1.log_prob(z1).sum(-1) + q2.log_prob(z2).sum(-1)
    lp = m.p_x(z1).log_prob(x).sum(-1) + m.p_z1(z2).log_prob(z1).sum(-1)
    lp = lp + D.Bernoulli(logits=m.prior_logits).log_prob(z2).sum(-1)
    return (lq.exp() * (lp - lq)).sum()


@pytest.mark.parametrize("name", ["reinforce-loo", "nvil", "arm", "disarm", "relax"])
def test_sbn2_layer_estimators_unbiased(name):
    m, x = _tiny_sbn()
    params = dict(m.named_parameters())
    exact = torch.autograd.grad(_exact_elbo(m, x), list(params.values()))
    ests = layer_estimators(name, {"x_dim": 6, "h1": 2})
    for e in ests:  # NVIL's networks follow the model's dtype
        if hasattr(e, "baseline") and getattr(e.baseline, "model", None) is not None:
            e.baseline.model.double()
    est = sg.graphs.estimate_grad(m.graph(x, *ests), params, n=2048, seed=0)
    assert_grad_unbiased(est, dict(zip(params, exact)), what=name)


@pytest.mark.parametrize("name", ["reinforce-loo", "disarm", "vimco"])
def test_sbn2_trains_and_reports_per_layer_variance(name):
    r = train2(load_dataset(None), name, steps=3, hidden=8, progress=False, grad_var_repeats=3)
    assert r["steps"] == 3 and set(r["grad_variance"]) == {"layer1", "layer2"}
    assert all(v > 0 for v in r["grad_variance"].values())


def test_sbn2_unknown_estimator():
    with pytest.raises(sg.EstimatorNotApplicable, match="unknown estimator"):
        layer_estimators("bogus", {})


@pytest.mark.parametrize(
    "est", [lambda: sg.ScoreFunction(sg.baselines.LeaveOneOut()), sg.Enumerate]
)
def test_bayesian_gmm_graph_gradient_is_the_exact_elbos(est):
    data = GaussianMixture.synthetic(n=5, seed=1)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        m = BayesianGaussianMixture(data.x.double(), k=3).double()
        with torch.no_grad():
            m.logits.normal_()
    params = dict(m.named_parameters())
    exact = torch.autograd.grad(m.exact_elbo(), list(params.values()))
    out = sg.graphs.estimate_grad(m.graph(est()), params, n=2048, seed=0)
    assert_grad_unbiased(out, dict(zip(params, exact)), what="bayesian gmm")


def test_bayesian_gmm_fits_like_the_closed_form():
    exact = fit_gmm("exact", steps=400, n_data=20, bayesian=True)
    graph = fit_gmm("enumerate", steps=400, n_data=20, bayesian=True)
    assert max(abs(a - b) for a, b in zip(exact["means"], graph["means"], strict=True)) < 0.1
    assert abs(exact["elbo"] - graph["elbo"]) < 0.5
