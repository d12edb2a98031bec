"""Pathwise gradients, including implicit reparameterisation (Gamma, Beta, Dirichlet).

False-alarm rate: each z-test uses |z| < 4.42 (1e-5 per component, fixed seeds).
"""

import pytest
import torch
import torch.distributions as D

import scoregrad as sg
from scoregrad.testing import assert_grad_unbiased


def test_dirichlet_implicit_reparameterisation():
    log_alpha = torch.tensor([0.2, -0.3, 0.5], dtype=torch.float64, requires_grad=True)

    def exact(log_alpha):  # E[x_0²] = α0(α0 + 1) / (A(A + 1))
        a = log_alpha.exp()
        A = a.sum()
        return a[0] * (a[0] + 1) / (A * (A + 1))

    est = sg.estimate_grad(
        lambda x: x[:, 0] ** 2,
        lambda log_alpha: D.Dirichlet(log_alpha.exp()),
        {"log_alpha": log_alpha},
        n=20_000,
        estimator=sg.Pathwise(),
        seed=0,
    )
    (g,) = torch.autograd.grad(exact(log_alpha), log_alpha)
    assert_grad_unbiased(est, {"log_alpha": g})


def test_fallback_when_dist_fn_does_not_broadcast():
    X = torch.tensor([[1.0, 0.5], [0.0, -1.0], [2.0, 1.0]], dtype=torch.float64)
    w = torch.tensor([0.2, -0.4], dtype=torch.float64, requires_grad=True)
    est = sg.estimate_grad(
        lambda x: (x**2).sum(-1),
        lambda w: D.Normal(X @ w, 1.0),
        {"w": w},
        n=5000,
        estimator=sg.Pathwise(),
        seed=1,
    )
    (g,) = torch.autograd.grad(((X @ w) ** 2).sum() + 3.0, w)
    assert_grad_unbiased(est, {"w": g})


def test_surrogate_door_and_pathwise_variance():
    mu = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    loss = sg.expectation(lambda x: x**2, D.Normal(mu, 1.0), n=10, estimator=sg.Pathwise(), seed=3)
    (g,) = torch.autograd.grad(loss, mu)
    est = sg.estimate_grad(
        lambda x: x**2,
        lambda mu: D.Normal(mu, 1.0),
        {"mu": mu},
        n=10,
        estimator=sg.Pathwise(),
        seed=3,
    )
    torch.testing.assert_close(g, est.grad["mu"])


def test_not_applicable_errors_name_alternatives():
    theta = torch.zeros(2, requires_grad=True)
    with pytest.raises(sg.EstimatorNotApplicable, match="rsample") as e:
        sg.estimate_grad(
            lambda b: b.sum(-1),
            lambda theta: D.Bernoulli(logits=theta),
            {"theta": theta},
            n=8,
            estimator=sg.Pathwise(),
        )
    for name in ("ScoreFunction", "DisARM", "RELAX", "MeasureValued"):
        assert name in str(e.value)
    mu = torch.tensor(0.0, requires_grad=True)
    with pytest.raises(sg.EstimatorNotApplicable, match="differentiabl"):
        sg.estimate_grad(
            lambda x: (x > 0).float(),
            lambda mu: D.Normal(mu, 1.0),
            {"mu": mu},
            n=8,
            estimator=sg.Pathwise(),
        )
    with pytest.raises(sg.EstimatorNotApplicable, match="differentiabl"):
        sg.estimate_grad(
            lambda x: x.numpy() ** 2,
            lambda mu: D.Normal(mu, 1.0),
            {"mu": mu},
            n=8,
            estimator=sg.Pathwise(),
        )


def test_family_dist_fn_runs_expanded_and_matches_its_lambda():
    """A ``Family`` declares the chain rule for scores, but pathwise gradients flow through the
    samples: it must expand the parameters (not the n × n batched fallback, which at n = 5·10⁴
    needed 20 GB), and give the numbers of the same parametrisation written as a lambda."""
    mu = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    ls = torch.tensor(-0.2, dtype=torch.float64, requires_grad=True)
    fam = sg.Family(D.Normal, unconstrained=True)
    out = [
        sg.estimate_grad(lambda x: x**2, dist_fn, params, n=50_000, estimator=sg.Pathwise(), seed=3)
        for dist_fn, params in [
            (fam, {"loc": mu, "scale": ls}),
            (lambda mu, ls: D.Normal(mu, ls.exp()), {"mu": mu, "ls": ls}),
        ]
    ]
    for a, b in [("loc", "mu"), ("scale", "ls")]:
        torch.testing.assert_close(out[0].grad[a], out[1].grad[b], rtol=1e-12, atol=0)
        torch.testing.assert_close(out[0].stderr[a], out[1].stderr[b], rtol=1e-9, atol=0)


def test_batched_fallback_in_blocks_equals_one_pass(monkeypatch):
    """The non-broadcasting fallback backpropagates blocks of the identity; any block size gives
    the same per-sample rows as one pass (bounded memory, same numbers)."""
    from scoregrad.estimators import pathwise

    mu = torch.tensor([0.3, -0.1, 0.2], dtype=torch.float64, requires_grad=True)

    def run():
        return sg.estimate_grad(
            lambda x: (x**3).sum(-1), lambda mu: D.Normal(mu.reshape(3), 1.0), {"mu": mu},
            n=50, estimator=sg.Pathwise(), seed=1, return_per_sample=True,
        )  # fmt: skip

    whole = run()
    monkeypatch.setattr(pathwise, "BATCHED_ELEMENTS", 7 * 50)  # blocks of 7 rows, one of 1
    blocks = run()
    assert torch.equal(whole.per_sample["mu"], blocks.per_sample["mu"])


def test_fallback_batches_stay_unbiased_and_still_refuse_step_functions(monkeypatch):
    """The non-broadcasting fallback runs batches of FALLBACK_BATCH samples, each its own graph
    (O(n) time: n = 3·10⁴ took 7.8 s as one graph, 0.26 s in batches); the estimate stays
    unbiased across uneven batches and a piecewise-constant f is still refused."""
    from scoregrad.estimators import pathwise

    monkeypatch.setattr(pathwise, "FALLBACK_BATCH", 7)  # 5000 = 714 × 7 + 2
    X = torch.tensor([[1.0, 0.5], [0.0, -1.0], [2.0, 1.0]], dtype=torch.float64)
    w = torch.tensor([0.2, -0.4], dtype=torch.float64, requires_grad=True)
    est = sg.estimate_grad(lambda x: (x**2).sum(-1), lambda w: D.Normal(X @ w, 1.0), {"w": w},
                           n=5000, estimator=sg.Pathwise(), seed=2)  # fmt: skip
    (g,) = torch.autograd.grad(((X @ w) ** 2).sum() + 3.0, w)
    assert_grad_unbiased(est, {"w": g})
    with pytest.raises(sg.EstimatorNotApplicable, match="piecewise constant"):
        sg.estimate_grad(lambda x: torch.floor(x).sum(-1), lambda w: D.Normal(X @ w, 1.0),
                         {"w": w}, n=50, estimator=sg.Pathwise(), seed=0)  # fmt: skip


@pytest.mark.parametrize("expanded", [True, False])
def test_direct_use_of_a_parameter_is_refused_naming_only_that_one(expanded):
    """The expanded path finds f's direct use in the backward pass that makes the gradients (its
    leaves are detached from the user's parameters); it must name exactly the parameters f
    reaches, as the fallback's separate check does."""
    mu = torch.tensor(0.5, requires_grad=True)
    log_sigma = torch.tensor(0.1, requires_grad=True)

    def dist_fn(mu, log_sigma):
        if not expanded and mu.dim() > 0:
            raise RuntimeError("no leading sample axis")  # forces the per-batch fallback
        return D.Normal(mu, log_sigma.exp())

    params = {"mu": mu, "log_sigma": log_sigma}
    with pytest.raises(sg.FunctionOutputError, match=r"parameter\(s\) log_sigma directly"):
        sg.estimate_grad(lambda x: x * log_sigma, dist_fn, params, n=64,
                         estimator=sg.Pathwise(), seed=0)  # fmt: skip
    est = sg.estimate_grad(lambda x: 2.0 * x, dist_fn, params, n=64,
                           estimator=sg.Pathwise(), seed=0)  # fmt: skip
    assert float(est.grad["mu"]) == pytest.approx(2.0, abs=1e-12)
