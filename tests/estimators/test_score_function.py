"""``ScoreFunction.contributions_shared``: one draw serves every baseline and control variate
configuration, each bit for bit what its own call from the same seed gives."""

from __future__ import annotations

import torch
import torch.distributions as D

from scoregrad.baselines import LeaveOneOut, NoBaseline
from scoregrad.control_variates import ScoreControlVariate
from scoregrad.core.evaluate import Evaluator
from scoregrad.core.seeding import seeded
from scoregrad.estimators.score_function import ScoreFunction
from scoregrad.sampling import Antithetic


def _setup():
    params = {"mu": torch.tensor([0.3, -1.0], dtype=torch.float64, requires_grad=True),
              "log_sigma": torch.tensor([0.1, 0.4], dtype=torch.float64, requires_grad=True)}  # fmt: skip

    def dist_fn(mu, log_sigma):
        return D.Independent(D.Normal(mu, log_sigma.exp()), 1)

    def f(x):
        return torch.cos(3 * x).sum(-1) + (x**2).sum(-1)

    return params, dist_fn, f


def _evaluator(f, params):
    return Evaluator(f, dtype=torch.float64, device=torch.device("cpu"), watch=dict(params))


def test_shared_draw_equals_each_own_call_bit_for_bit():
    params, dist_fn, f = _setup()
    group = [ScoreFunction(), ScoreFunction(baseline=LeaveOneOut()),
             ScoreFunction(NoBaseline(), ScoreControlVariate(coefficient="loo"))]  # fmt: skip
    assert len({e.shared_draw() for e in group}) == 1
    ev = _evaluator(f, params)
    with seeded(5):
        shared = group[0].contributions_shared(group[1:], ev, dist_fn, params, 64)
    assert ev.n_evals == 64  # f evaluated once for the three
    for est, got in zip(group, shared, strict=True):
        with seeded(5):
            own = est.contributions(_evaluator(f, params), dist_fn, params, 64)
        assert torch.equal(got.values, own.values) and got.block == own.block
        assert all(torch.equal(got.grads[k], own.grads[k]) for k in own.grads)


def test_different_samplers_do_not_share_and_fall_back_to_own_calls():
    params, dist_fn, f = _setup()
    iid, anti = ScoreFunction(baseline=LeaveOneOut()), ScoreFunction(sampler=Antithetic())
    assert iid.shared_draw() != anti.shared_draw()
    ev = _evaluator(f, params)
    with seeded(1):
        out = iid.contributions_shared([anti], ev, dist_fn, params, 64)
    assert ev.n_evals == 128 and len(out) == 2
