"""The conjugate chains of Pyro's inference tests, with every combination of reparameterised
(Pathwise) and score-function (LeaveOneOut) choices.

Two checks per case: the graph's gradient of -ELBO at Pyro's perturbed starting point, z-tested
against the exact gradient of KL(q || posterior) (|z| < 4.42 per component), and a short fit whose
result is compared with the closed-form posterior. The fit's tolerance comes from its own Monte
Carlo error: the spread of the last iterates around their average (the stationary noise of the
optimiser), times 4.42, plus the optimisation error a noiseless fit of the same length leaves (on
the exact KL). Longer fits with tighter tolerances run with ``-m slow``.
"""

from __future__ import annotations

import itertools

import pytest
import torch

import scoregrad as sg
from scoregrad.baselines import LeaveOneOut
from scoregrad.testing import assert_grad_unbiased

from .conjugate import PROBLEMS


def _estimator(kind):
    return sg.Pathwise() if kind == "reparam" else sg.ScoreFunction(LeaveOneOut())


CASES = [
    (name, combo)
    for name, cls in PROBLEMS.items()
    for combo in itertools.product(("reparam", "score"), repeat=len(cls.latents))
]


def _exact_grad(problem, params):
    leaves = {k: v.detach().clone().requires_grad_() for k, v in params.items()}
    kl = problem.kl(leaves)
    gs = torch.autograd.grad(kl, list(leaves.values()))
    return dict(zip(leaves, gs))


@pytest.mark.parametrize("name,combo", CASES, ids=[f"{n}-{'-'.join(c)}" for n, c in CASES])
def test_gradient_at_the_start_is_exact(name, combo):
    problem = PROBLEMS[name]()
    params = problem.start()
    model = problem.model(params, [_estimator(c) for c in combo])
    est = sg.graphs.estimate_grad(model, params, n=2048, seed=0)
    assert_grad_unbiased(est, _exact_grad(problem, params), what=f"{name} {combo}")


def _fit(problem, combo, steps, n, lr, seed=0, noiseless=False):
    params = problem.start()
    opt = torch.optim.Adam(params.values(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 if t < steps // 2 else 0.2)
    model = problem.model(params, [_estimator(c) for c in combo])
    tail = {k: [] for k in params}
    for t in range(steps):
        opt.zero_grad()
        loss = problem.kl(params) if noiseless else sg.graphs.expectation(model, n, seed=seed + t)
        loss.backward()
        opt.step()
        sched.step()
        if t >= steps - steps // 4:
            for k, p in params.items():
                tail[k].append(p.detach().clone())
    tail = {k: torch.stack(v) for k, v in tail.items()}
    return {k: v.mean(0) for k, v in tail.items()}, {k: v.std(0) for k, v in tail.items()}


def _assert_fit(name, combo, steps, n, lr):
    problem = PROBLEMS[name]()
    post = problem.posterior()
    mean, spread = _fit(problem, combo, steps, n, lr)
    ideal, _ = _fit(problem, combo, steps, n, lr, noiseless=True)
    for k, v in post.items():
        opt_error = (ideal[k] - v).abs()
        tol = 4.42 * spread[k] + opt_error + 1e-3
        err = (mean[k] - v).abs()
        assert bool((err < tol).all()), (
            f"{name} {combo} {k}: fitted {mean[k].tolist()}, exact {v.tolist()}, "
            f"tolerance {tol.tolist()}"
        )


@pytest.mark.parametrize("name,combo", CASES, ids=[f"{n}-{'-'.join(c)}" for n, c in CASES])
def test_short_fit_reaches_the_closed_form(name, combo):
    _assert_fit(name, combo, steps=300, n=16, lr=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("name,combo", CASES, ids=[f"{n}-{'-'.join(c)}" for n, c in CASES])
def test_long_fit_reaches_the_closed_form(name, combo):
    _assert_fit(name, combo, steps=3000, n=32, lr=0.02)
