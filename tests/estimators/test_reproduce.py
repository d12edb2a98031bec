"""Cheap reproductions of published variance figures (the long runs are in benchmarks/).

* Mohamed, Rosca, Figurnov & Mnih 2020, §3: x ~ N(1, 1), parameters (μ, σ); single-sample variances
  of the score function, the score function with the optimal baseline, pathwise, and measure-valued
  (coupled and independent) estimators, measured and compared with exact values by quadrature
  (30/136, 14/64, 4/12, 1.093/8 at cost (x - k)², k = 0), and for the other costs of the section.
* The RELAX toy (Grathwohl et al. 2018): f(b) = (b - t)², t = 0.499, θ = 0; exact single-sample
  variances REINFORCE 0.0156251 and leave-one-out with K = 2 (1 - 2t)²/16 = 2.5e-7 (ARM's and
  DisARM's are tested in test_arm.py).

False-alarm rate: each variance z-test uses |z| < 4.42 (1e-5 per component, fixed seeds); the
variance's standard error is estimated from the spread of squared deviations (n = 10⁵).
"""

import math

import numpy as np
import pytest
import torch
import torch.distributions as D

import scoregrad as sg
from scoregrad.control_variates import ScoreControlVariate
from scoregrad.diagnostics import normal_estimator_variances
from scoregrad.problems import bernoulli_toy
from scoregrad.testing import Z_CRIT, variance_z


def _exp(k):
    return lambda x: np.exp(-k * x**2) if isinstance(x, float) else torch.exp(-k * x**2)


def _cos(k):
    return lambda x: np.cos(k * x) if isinstance(x, float) else torch.cos(k * x)


COSTS = {  # cost(k) and its derivative (for the pathwise quadrature)
    "square": (lambda k: lambda x: (x - k) ** 2, lambda k: lambda x: 2 * (x - k)),
    "exp": (_exp, lambda k: lambda x: -2 * k * x * np.exp(-k * x**2)),
    "cos": (_cos, lambda k: lambda x: -k * np.sin(k * x)),
}

ESTIMATORS = {
    "score_function": lambda: sg.ScoreFunction(),
    "optimal_baseline": lambda: sg.ScoreFunction(control_variate=ScoreControlVariate()),
    "pathwise": lambda: sg.Pathwise(),
    "mvd_coupled": lambda: sg.MeasureValued(coupling=True),
    "mvd": lambda: sg.MeasureValued(coupling=False),
}

CASES = [("square", 0.0), ("square", 3.0), ("exp", 1.0), ("cos", 0.5), ("cos", 3.0)]


@pytest.fixture(scope="module")
def exact_variances():
    out = {}
    for cost, k in CASES:
        f, df = COSTS[cost][0](k), COSTS[cost][1](k)
        out[(cost, k)] = normal_estimator_variances(f, df, mu=1.0, sigma=1.0)
    return out


@pytest.mark.parametrize("cost,k", CASES)
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_mohamed_section3_variances(cost, k, name, exact_variances):
    mu = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    sigma = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    f = COSTS[cost][0](k)
    seed = 1000 * CASES.index((cost, k)) + list(ESTIMATORS).index(name)
    est = sg.estimate_grad(f, lambda mu, sigma: D.Normal(mu, sigma), {"mu": mu, "sigma": sigma},
                           n=100_000, estimator=ESTIMATORS[name](), seed=seed,
                           return_per_sample=True)  # fmt: skip
    exact = exact_variances[(cost, k)][name]
    for j, p in enumerate(("mu", "sigma")):
        v_exact = torch.tensor(exact[j], dtype=torch.float64)
        per = est.per_sample[p]
        if v_exact < 1e-12:  # a zero-variance estimator (e.g. pathwise at constant cost)
            assert float(per.var()) < 1e-20
            continue
        z = variance_z(per, v_exact)
        assert abs(float(z)) < Z_CRIT, (cost, k, name, p, float(per.var()), exact[j])


def test_mohamed_k0_headline_numbers(exact_variances):
    v = exact_variances[("square", 0.0)]
    got = {k: (round(a, 3), round(b, 3)) for k, (a, b) in v.items()}
    assert got["score_function"] == (30.0, 136.0)
    assert got["optimal_baseline"] == (14.0, 64.0)
    assert got["pathwise"] == (4.0, 12.0)
    assert got["mvd_coupled"] == (1.093, 8.0)


def test_ranking_changes_with_k(exact_variances):
    # for the cosine cost the pathwise estimator wins at small k and loses to the score function at
    # large k (Mohamed et al. 2020, fig. 2): the exact variances show the reversal
    small, large = exact_variances[("cos", 0.5)], exact_variances[("cos", 3.0)]
    assert small["pathwise"][0] < small["score_function"][0]
    assert large["pathwise"][0] > large["score_function"][0]


def test_relax_toy_reinforce_and_loo_variances():
    t = 0.499
    prob = bernoulli_toy(t=t, logits=(0.0,))
    params = prob.params()
    sf = sg.estimate_grad(prob.f, prob.dist_fn, params, n=100_000, seed=0, return_per_sample=True)
    # exact: E[f² s²] - g² with s = b - ½: ¼ (t² + (1-t)²)/2·... written out
    v_sf = 0.25 * 0.5 * ((1 - t) ** 4 + t**4) - (0.25 * (1 - 2 * t)) ** 2
    assert v_sf == pytest.approx(0.0156251, abs=1e-7)
    assert abs(float(variance_z(sf.per_sample["logits"], torch.tensor(v_sf)))) < Z_CRIT
    # leave-one-out with K = 2: ĝ = ½ (1 - 2t) (b1 - b2)², variance (1 - 2t)²/16
    reps = torch.stack([
        sg.estimate_grad(prob.f, prob.dist_fn, params, n=2, estimator=sg.RLOO(), seed=s).grad[
            "logits"]
        for s in range(1500)
    ]).reshape(-1)  # fmt: skip
    v_loo = (1 - 2 * t) ** 2 / 16
    assert v_loo == pytest.approx(2.5e-7, rel=1e-9)
    assert abs(float(variance_z(reps.unsqueeze(1), torch.tensor(v_loo)))) < Z_CRIT
    assert math.isclose(float(reps.mean()), 0.25 * (1 - 2 * t), rel_tol=0.1)


def test_relax_toy_disarm_descends_faster_than_reinforce_at_equal_evaluations():
    from scoregrad.diagnostics import trajectory

    prob = bernoulli_toy()
    tr = trajectory(prob, {"reinforce": (sg.ScoreFunction(), 2), "disarm": (sg.DisARM(), 1)},
                    steps=300, lr=0.01, record_every=299)  # fmt: skip
    assert tr["disarm"]["evals"][-1] == tr["reinforce"]["evals"][-1]
    assert tr["disarm"]["loss"][-1] < tr["reinforce"]["loss"][-1]
