"""The two doors agree: for every registered estimator, the mean of ``expectation``'s gradients
equals ``estimate_grad``'s gradient (a two-sample z-test, |z| < 4.42 per component).

Most estimators share one per-sample computation between ``contributions`` and ``surrogate``
(ARM/DisARM's ``_logit_grad``, RELAX's ``_core``, MeasureValued's ``_grads``, the pathwise
family's draw); the score function's DiCE surrogate and VIMCO's are written separately, and this
test is what keeps all of them from drifting. Biased estimators must agree too (same bias).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributions as D

import scoregrad as sg
from scoregrad.estimators import registry
from scoregrad.testing import Z_CRIT

M = 8  # samples per expectation call (VIMCO's K)
REPEATS = 300
N = 40_000


def _problems():
    mu = torch.tensor([0.4, -0.3], dtype=torch.float64)
    logits = torch.tensor([0.5, -0.7], dtype=torch.float64)
    return [
        (lambda p: D.Normal(p, 1.0), mu, lambda x: ((x - 0.5) ** 2).sum(-1)),
        (lambda p: D.Bernoulli(logits=p), logits, lambda b: ((b - 0.3) ** 2).sum(-1)),
    ]


#: constructions that make the two doors estimate the same thing (VIMCO: K = M in both)
MAKE = {"vimco": lambda: sg.VIMCO(M)}


def _case(name):
    make = MAKE.get(name, registry.estimator_class(name))
    for dist_fn, value, f in _problems():
        if make().supports(dist_fn(value)) is None:
            return make, dist_fn, value, f
    return None


NAMES = [n for n in registry.registered() if _case(n) is not None]


@pytest.mark.parametrize("name", NAMES)
def test_the_two_doors_agree_in_mean(name):
    make, dist_fn, value, f = _case(name)
    estimator = make()
    if "expectation" not in estimator.doors:
        pytest.skip(f"{name} declares only {sorted(estimator.doors)}")
    p = value.clone().requires_grad_()
    est = sg.estimate_grad(f, dist_fn, {"p": p}, n=N, estimator=make(), seed=1)
    door = make()
    grads = []
    for r in range(REPEATS):
        loss = sg.expectation(f, dist_fn(p), n=M, estimator=door, seed=10_000 + r)
        (g,) = torch.autograd.grad(loss, p)
        grads.append(g)
    g = torch.stack(grads)
    mean, se = g.mean(0), g.std(0) / math.sqrt(REPEATS)
    z = (mean - est.grad["p"]) / (se**2 + est.stderr["p"] ** 2).sqrt()
    exact_both = (se == 0) & (est.stderr["p"] == 0) & torch.isclose(mean, est.grad["p"])
    assert bool(((z.abs() < Z_CRIT) | exact_both).all()), (name, mean, est.grad["p"], z)


@pytest.mark.parametrize("est", [sg.MeasureValued(), sg.ARM(), sg.ScoreFunction()], ids=repr)
def test_the_expectation_door_leaves_the_callers_distribution_untouched(est):
    """A distribution object reused across calls and backward passes: the estimators' lazily
    computed tensors (a Bernoulli's probs, read by measure-valued) are cached on a private copy,
    not on the caller's object, whose second backward pass would otherwise run through a graph
    the first freed. Each call's gradient equals a fresh object's at the same seed."""
    theta = torch.tensor([0.2, -0.4, 0.6], requires_grad=True)
    reused = D.Bernoulli(logits=theta)
    for seed in range(3):
        loss = sg.expectation(lambda b: b.sum(-1), reused, n=16, estimator=est, seed=seed)
        (g,) = torch.autograd.grad(loss, theta)
        fresh = sg.expectation(lambda b: b.sum(-1), D.Bernoulli(logits=theta), n=16,
                               estimator=est, seed=seed)  # fmt: skip
        assert torch.equal(g, torch.autograd.grad(fresh, theta)[0])
    assert "probs" not in reused.__dict__
