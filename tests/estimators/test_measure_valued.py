"""Measure-valued derivatives: the registry, evaluation counts, coupling, both doors.

The variance reproductions of Mohamed et al. (2020) §3 are in tests/estimators/test_reproduce.py.
False-alarm rate: each z-test uses |z| < 4.42 (1e-5 per component, fixed seeds).
"""

import pytest
import torch
import torch.distributions as D

import scoregrad as sg
from scoregrad.estimators.measure_valued import WeakDerivative, has_mvd, register_mvd
from scoregrad.testing import Z_CRIT, assert_grad_unbiased, mean_z


def test_evaluation_counts():
    mu = torch.tensor([0.5, -1.0], dtype=torch.float64, requires_grad=True)
    sigma = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    est = sg.estimate_grad(
        lambda x: (x**2).sum(-1),
        lambda mu, sigma: D.Normal(mu, sigma),
        {"mu": mu, "sigma": sigma},
        n=100,
        estimator=sg.MeasureValued(),
    )
    # base + (loc, scale) × 2 elements × 2 sides
    assert est.n_evals == 100 * (1 + 2 * 2 * 2)
    # a parameter that nothing depends on costs nothing: only loc here
    est = sg.estimate_grad(
        lambda x: (x**2).sum(-1),
        lambda mu: D.Normal(mu, 1.0),
        {"mu": mu},
        n=100,
        estimator=sg.MeasureValued(),
    )
    assert est.n_evals == 100 * (1 + 2 * 2)
    lam = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    est = sg.estimate_grad(
        lambda x: x**2,
        lambda lam: D.Poisson(lam),
        {"lam": lam},
        n=100,
        estimator=sg.MeasureValued(),
    )
    assert est.n_evals == 200  # the negative side is the sample itself


def test_batched_normal_unbiased_and_coupling_helps():
    mu = torch.tensor([0.5, -1.0], dtype=torch.float64, requires_grad=True)
    sigma = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)

    def f(x):
        return torch.cos(x[:, 0]) * x[:, 1] ** 2

    def exact(mu, sigma):
        return torch.exp(-(sigma[0] ** 2) / 2) * torch.cos(mu[0]) * (mu[1] ** 2 + sigma[1] ** 2)

    grads = torch.autograd.grad(exact(mu, sigma), [mu, sigma])
    g = dict(zip(["mu", "sigma"], grads, strict=True))
    var = {}
    for coupling in (True, False):
        est = sg.estimate_grad(
            f,
            lambda mu, sigma: D.Normal(mu, sigma),
            {"mu": mu, "sigma": sigma},
            n=20_000,
            estimator=sg.MeasureValued(coupling),
            seed=int(coupling),
        )
        assert_grad_unbiased(est, g)
        var[coupling] = est.variance_per_sample["mu"]
    assert (var[True] < var[False]).all()


def test_surrogate_door_with_items():
    # Poisson rates per data point (item); f returns one value per item
    log_rate = torch.tensor([[0.1, 0.5], [-0.3, 0.2]], dtype=torch.float64, requires_grad=True)

    def f(x):  # (n, 2, 2) -> (n, 2)
        return x[..., 0] * x[..., 1] + x[..., 0] ** 2

    reps = []
    for seed in range(200):
        loss = sg.expectation(
            f,
            D.Poisson(log_rate.exp()),
            n=20,
            estimator=sg.MeasureValued(),
            item_shape=(2,),
            seed=seed,
        )
        (g,) = torch.autograd.grad(loss, log_rate)
        reps.append(g.flatten())
    lam = log_rate.exp()
    exact = (lam[:, 0] * lam[:, 1] + lam[:, 0] + lam[:, 0] ** 2).sum()
    (g,) = torch.autograd.grad(exact, log_rate)
    assert mean_z(torch.stack(reps), g.flatten()).abs().max() < Z_CRIT


def test_registry_accepts_new_families_and_refuses_unknown_ones():
    class Geometric1(D.Geometric):  # a subclass keeps its own registration separate
        pass

    assert not has_mvd(Geometric1(probs=torch.tensor(0.3)))

    @register_mvd(Geometric1, ("probs",))
    def _geometric(v, x, coupled):
        # P(k) = (1-p)^k p and NB(2, p)(k) = (k+1)(1-p)^k p² (the law of x + x', x' ~ Geom(p)):
        # ∂p P(k) = (1-p)^(k-1) (1 - (k+1)p) = (P(k) - NB(k)) / (p(1-p)).
        p = v["probs"]
        c = 1.0 / (p * (1 - p))
        return {"probs": WeakDerivative(c, None, x + D.Geometric(probs=p).sample())}

    p = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    est = sg.estimate_grad(
        lambda x: x,
        lambda p: Geometric1(probs=p),
        {"p": p},
        n=40_000,
        estimator=sg.MeasureValued(),
        seed=0,
    )
    assert_grad_unbiased(
        est, {"p": torch.tensor(-1 / 0.3**2, dtype=torch.float64)}
    )  # E x = 1/p - 1
    a = torch.tensor(1.0, requires_grad=True)
    with pytest.raises(sg.EstimatorNotApplicable, match="register_mvd"):
        sg.estimate_grad(
            lambda x: x, lambda a: D.Gamma(a, 1.0), {"a": a}, n=8, estimator=sg.MeasureValued()
        )
