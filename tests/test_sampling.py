"""Samplers and the inverse-CDF registry."""

import math

import pytest
import torch
import torch.distributions as D

import scoregrad as sg
from scoregrad.core.model import SampleModel, from_uniform
from scoregrad.sampling import QMC, Antithetic
from scoregrad.testing import Z_CRIT

FAMILIES = [
    D.Normal(torch.tensor([0.3, -1.0]), torch.tensor([1.5, 0.5])),
    D.Exponential(torch.tensor(2.0)),
    D.Uniform(torch.tensor(-1.0), torch.tensor(3.0)),
    D.Laplace(torch.tensor(1.0), torch.tensor(2.0)),
    D.Bernoulli(probs=torch.tensor([0.2, 0.7])),
    D.Categorical(probs=torch.tensor([0.1, 0.6, 0.3])),
    D.Poisson(torch.tensor(3.5)),
    D.Gamma(torch.tensor(2.5), torch.tensor(1.5)),
    D.Beta(torch.tensor(2.0), torch.tensor(5.0)),
    D.MultivariateNormal(torch.tensor([1.0, -1.0]), torch.tensor([[2.0, 0.5], [0.5, 1.0]])),
    D.Independent(D.Normal(torch.zeros(3), torch.ones(3)), 1),
]


@pytest.mark.parametrize("dist", FAMILIES, ids=lambda d: type(d).__name__)
def test_inverse_cdf_samples_have_the_right_mean_and_variance(dist):
    """Means within Z_CRIT standard errors; variances within 10% (n = 2^16)."""
    n = 2**16
    torch.manual_seed(0)
    model = SampleModel.of(dist, n)
    u = torch.rand(n, model.uniform_dim, dtype=torch.float64)
    x = model.from_uniform(u).to(torch.float64)
    if isinstance(dist, D.Categorical):
        mean = (dist.probs * torch.arange(3.0)).sum()
        var = (dist.probs * torch.arange(3.0) ** 2).sum() - mean**2
    else:
        mean, var = dist.mean.double(), dist.variance.double()
    assert x.shape == (n, *dist.batch_shape, *dist.event_shape)
    se = (var / n).sqrt()
    assert ((x.mean(0) - mean).abs() < Z_CRIT * se).all()
    assert ((x.var(0) / var - 1).abs() < 0.1).all()


def test_antithetic_normal_pairs_reflect_about_the_mean():
    mu = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    model = SampleModel.expand(lambda mu: D.Normal(mu, 2.0), {"mu": mu}, 10)
    x, block = Antithetic().draw(model)
    assert block == 2
    pairs = x.reshape(5, 2)
    assert torch.allclose(pairs.sum(1), torch.full((5,), 1.4, dtype=torch.float64))


def test_qmc_replicates_are_independent_blocks():
    mu = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    est = sg.estimate_grad(
        lambda x: x,
        lambda mu: D.Normal(mu, 1.0),
        {"mu": mu},
        n=512,
        estimator=sg.ScoreFunction(sampler=QMC(replicates=8)),
        seed=0,
    )
    assert est.n_units == 8 and est.n == 512


def test_qmc_converges_faster_than_monte_carlo():
    """Plain MC variance falls 16x from n = 2^8 to 2^12 points per replicate; RQMC on a smooth
    integrand falls much faster (measured 64x here: the Normal inverse CDF makes the integrand
    unbounded near 0 and 1, which slows the n^-3 rate of fully smooth integrands). Assert > 32x."""
    mu = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)

    def var(n):
        return (
            sg.estimate_grad(
                torch.cos,
                lambda mu: D.Normal(mu, 1.0),
                {"mu": mu},
                n=n * 32,
                estimator=sg.ScoreFunction(sampler=QMC(32)),
                seed=3,
            ).stderr["mu"]
            ** 2
        )

    assert float(var(2**8) / var(2**12)) > 32


@pytest.mark.parametrize("rate", [1e-3, 0.7, 9.0, 63.0, 80.0, 2500.0])
def test_poisson_inverse_cdf_is_scipys_quantile(rate):
    """The summed-probability inversion (rates up to POISSON_SUM_MAX_RATE) and SciPy's root finder
    (above it) give SciPy's quantile on every draw, per element of a batch of rates."""
    from scipy.stats import poisson

    rates = torch.tensor([rate, rate / 3.0], dtype=torch.float64)
    u = torch.rand(20_000, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    u[:2] = torch.tensor([1e-300, 1.0 - 1e-16]).unsqueeze(-1)  # the clamped extremes
    got = from_uniform(D.Poisson(rates), u)
    eps = torch.finfo(torch.float64).eps
    want = poisson.ppf(u.clamp(eps, 1 - eps).numpy(), rates.numpy())
    assert got.dtype == torch.float64
    assert (got.numpy() == want).all()


def test_from_uniform_rejects_families_without_inverse_cdf():
    with pytest.raises(sg.EstimatorNotApplicable, match="Dirichlet"):
        from_uniform(D.Dirichlet(torch.ones(3)), torch.rand(4, 3))


def test_antithetic_reduces_variance_for_monotone_f():
    """For f(x) = x (monotone) antithetic pairs cancel the noise exactly: var 0 for the value."""
    mu = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    est = sg.estimate_grad(
        lambda x: x,
        lambda mu: D.Normal(mu, 1.0),
        {"mu": mu},
        n=1000,
        estimator=sg.ScoreFunction(sampler=Antithetic()),
        seed=0,
    )
    assert float(est.value_stderr) < 1e-12 and math.isclose(float(est.value), 0.4, abs_tol=1e-12)
