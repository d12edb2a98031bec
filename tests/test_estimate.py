"""estimate_grad / expectation / score: unbiasedness, calibration, higher orders, streaming.

False-alarm rates: every z comparison uses scoregrad.testing.Z_CRIT (1e-5 per component). This
file makes about 400 comparisons, so a correct implementation fails by chance with p < 0.4%.
"""

import math
import zlib

import pytest
import torch
from torch.distributions import Normal, Poisson

import scoregrad as sg
from scoregrad import baselines as B
from scoregrad import control_variates as CV
from scoregrad import problems as P
from scoregrad import sampling as S
from scoregrad.testing import (
    Z_CRIT,
    assert_close_in_se,
    assert_grad_unbiased,
    assert_value_unbiased,
)

# a quadratic f is its own Taylor series: the delta method is then exact with coefficient 1, and an
# estimated ('loo') coefficient leaves only its own O(1/n) noise, which per-unit standard errors do
# not see (they are first-order). 'loo' coefficients are tested where the control variate is not exact.
NOT_QUADRATIC = {"normal_exp", "normal_cos", "gamma_x_log_x", "poisson_polynomial"}
DISCRETE = {
    "bernoulli_toy",
    "categorical_table",
    "onehot_table",
    "categorical_batch",
    "categorical_bernoulli_toy",
    "poisson_polynomial",
}
# no inverse CDF registered: antithetic and quasi-random samplers refuse them (EstimatorNotApplicable)
NO_ICDF = {"onehot_table"}
CONTINUOUS_DIFFERENTIABLE = {
    "normal_square",
    "normal_exp",
    "normal_cos",
    "mvn_quadratic",
    "gamma_x_log_x",
    "beta_square",
    "exponential_square",
    "bernoulli_toy",
    "poisson_polynomial",
}


def configs(problem_name):
    """(label, estimator factory, chunk_size) for every configuration that applies."""
    out = [
        ("plain", lambda: sg.ScoreFunction(), None),
        ("constant", lambda: sg.ScoreFunction(B.Constant(0.7)), None),
        # chunks let the stateful baselines learn within one call
        ("moving_average", lambda: sg.ScoreFunction(B.MovingAverage(0.8)), 2**12),
        ("loo", lambda: sg.ScoreFunction(B.LeaveOneOut()), None),
        ("learned", lambda: sg.ScoreFunction(B.Learned(lr=0.3, steps_per_update=5)), 2**12),
        ("score_cv", lambda: sg.ScoreFunction(control_variate=CV.ScoreControlVariate()), None),
        ("loo+score_cv", lambda: sg.ScoreFunction(B.LeaveOneOut(), CV.ScoreControlVariate()), None),
        ("antithetic", lambda: sg.ScoreFunction(sampler=S.Antithetic()), None),
        # QMC on discrete families: unbiased, but replicate SEs are unreliable (see sampling.QMC);
        # tested separately below, by the spread of independent runs
        *(
            [("qmc", lambda: sg.ScoreFunction(sampler=S.QMC(replicates=16)), None)]
            if problem_name not in DISCRETE
            else []
        ),
        ("loo+antithetic", lambda: sg.ScoreFunction(B.LeaveOneOut(), sampler=S.Antithetic()), None),
    ]
    if problem_name in NO_ICDF:
        out = [c for c in out if "antithetic" not in c[0] and c[0] != "qmc"]
    if problem_name in CONTINUOUS_DIFFERENTIABLE:
        out.append(("delta", lambda: sg.ScoreFunction(control_variate=CV.DeltaMethod()), None))
    if problem_name in NOT_QUADRATIC:
        out.append(
            (
                "delta_loo",
                lambda: sg.ScoreFunction(control_variate=CV.DeltaMethod(coefficient="loo")),
                None,
            )
        )
    if problem_name.startswith("normal"):
        out.append(
            (
                "user_cv",
                lambda: sg.ScoreFunction(
                    control_variate=CV.UserControlVariate(lambda x: x, lambda d: d.mean)
                ),
                None,
            )
        )
    return out


CASES = [
    (name, label, make, chunk) for name in P.CATALOGUE for (label, make, chunk) in configs(name)
]


@pytest.mark.parametrize("name,label,make,chunk", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_unbiased_on_catalogue(name, label, make, chunk):
    # three Bernoullis: with one, the optimal baseline makes the estimator exactly zero-variance,
    # where only second-order noise of estimated coefficients remains (see NOT_QUADRATIC)
    problem = P.get(name, **({"logits": (0.0, 0.4, -0.3)} if name == "bernoulli_toy" else {}))
    exact_value, exact_grad = problem.exact()
    est = sg.estimate_grad(
        problem.f,
        problem.dist_fn,
        problem.params(),
        n=2**15,
        estimator=make(),
        seed=zlib.crc32(f"{name}/{label}".encode()),
        chunk_size=chunk,
    )
    assert est.n == 2**15 and est.n_evals == 2**15
    assert_grad_unbiased(est, exact_grad, what=f"{name}/{label}")
    assert_value_unbiased(est, exact_value, what=f"{name}/{label}")


@pytest.mark.parametrize("name", sorted(DISCRETE - NO_ICDF))
def test_qmc_on_discrete_families_is_unbiased_over_independent_runs(name):
    """The mean of 40 independent RQMC estimates, z-tested with the spread of those estimates
    (not the replicate SEs, which are unreliable here), at |z| < 4.42 per component."""
    problem = P.get(name, **({"logits": (0.0, 0.4, -0.3)} if name == "bernoulli_toy" else {}))
    _, exact = problem.exact()
    est = sg.ScoreFunction(sampler=S.QMC(replicates=4))
    with pytest.warns(S.QMCDiscreteWarning):
        runs = [
            sg.estimate_grad(
                problem.f, problem.dist_fn, problem.params(), n=2**12, estimator=est, seed=500 + r
            )
            for r in range(40)
        ]
    for k in exact:
        g = torch.stack([r.grad[k] for r in runs])
        se = g.std(0) / math.sqrt(len(runs))
        assert_close_in_se(g.mean(0), exact[k], se, what=f"{name} qmc {k}")


@pytest.mark.parametrize(
    "label,make",
    [
        ("plain", lambda: sg.ScoreFunction()),
        ("loo", lambda: sg.ScoreFunction(B.LeaveOneOut())),
        ("score_cv", lambda: sg.ScoreFunction(control_variate=CV.ScoreControlVariate())),
        ("antithetic", lambda: sg.ScoreFunction(sampler=S.Antithetic())),
        ("qmc", lambda: sg.ScoreFunction(sampler=S.QMC(replicates=32))),
    ],
)
def test_stderr_calibrated(label, make):
    """Over R independent runs, z = (estimate - exact)/stderr should be ~N(0, 1).

    With R = 400 the sample mean of z has sd 0.05 and the sample variance sd ≈ 0.07 (heavier for
    small-sample t-like z's); the bounds below are > 4.4 sd wide (false alarm < 1e-5 each).
    """
    problem = P.get("normal_cos", k=1.0)
    _, exact = problem.exact()
    R, n = 400, 512
    est = make()
    zs = []
    for r in range(R):
        e = sg.estimate_grad(
            problem.f, problem.dist_fn, problem.params(), n=n, estimator=est, seed=10_000 + r
        )
        zs.append(torch.stack([e.z_scores(exact)[k] for k in ("mu", "log_sigma")]))
    z = torch.stack(zs)
    mean, var = z.mean(0), z.var(0)
    assert (mean.abs() < Z_CRIT * (var / R).sqrt()).all(), (label, mean, var)
    assert ((var > 0.7) & (var < 1.4)).all(), (label, mean, var)


def _variance(problem, estimator, n=2**17, seed=0, chunk_size=None):
    est = sg.estimate_grad(
        problem.f,
        problem.dist_fn,
        problem.params(),
        n=n,
        estimator=estimator,
        seed=seed,
        chunk_size=chunk_size,
    )
    return est.variance_per_sample


@pytest.mark.parametrize(
    "label,make,factor_mu,chunk",
    [
        ("loo", lambda: sg.ScoreFunction(B.LeaveOneOut()), 1.8, None),
        ("moving_average", lambda: sg.ScoreFunction(B.MovingAverage(0.5)), 1.8, 2**13),
        ("learned", lambda: sg.ScoreFunction(B.Learned(lr=0.5, steps_per_update=20)), 1.8, 2**13),
        ("score_cv", lambda: sg.ScoreFunction(control_variate=CV.ScoreControlVariate()), 2.0, None),
        ("antithetic", lambda: sg.ScoreFunction(sampler=S.Antithetic()), 1.25, None),
        ("qmc", lambda: sg.ScoreFunction(sampler=S.QMC(replicates=16)), 50.0, None),
        ("delta", lambda: sg.ScoreFunction(control_variate=CV.DeltaMethod()), 1e6, None),
    ],
)
def test_variance_reduction_is_real(label, make, factor_mu, chunk):
    """On (x - 3)², x ~ N(1, 1), each device lowers the per-sample variance of ∂/∂μ by at least
    the stated factor (measured here: LOO 2.0x, moving average ~2.0x, learned ~2.0x, optimal score
    CV 2.3x, antithetic 1.4x, QMC ~500x, delta method: exact, so zero variance). The exact plain
    variance is E[(x-3)⁴(x-1)²] - 16 = 90; with n = 2^17 each measured variance is within ~3%."""
    problem = P.get("normal_square", k=3.0)
    plain = _variance(problem, sg.ScoreFunction(), seed=1)["mu"]
    assert abs(float(plain) - 90.0) < 0.15 * 90  # the reference itself is right
    reduced = _variance(problem, make(), seed=2, chunk_size=chunk)["mu"]
    assert float(plain / reduced.clamp_min(1e-300)) > factor_mu, (label, plain, reduced)


def test_loo_variance_matches_theory():
    """RLOO with n samples has per-sample variance n/(n-1) Var[(f - E f) s] up to O(1/n);
    for (x-3)², N(1,1): Var[(f - 5)(x - 1)] = E[(f-5)²(x-1)²] - 16 = 40 (measured ≈ 44 at n=2^15
    because f's sample mean, not E f, is subtracted; the limit is checked loosely)."""
    problem = P.get("normal_square", k=3.0)
    v = _variance(problem, sg.ScoreFunction(B.LeaveOneOut()), n=2**18)["mu"]
    assert 36.0 < float(v) < 48.0


# --- higher-order derivatives through expectation ---------------------------------------------


def _repeat_second_derivative(build, f, n, repeats, seed0):
    out = []
    for r in range(repeats):
        theta = torch.tensor(build[1], dtype=torch.float64, requires_grad=True)
        loss = sg.expectation(f, build[0](theta), n=n, seed=seed0 + r)
        (g,) = torch.autograd.grad(loss, theta, create_graph=True)
        (h,) = torch.autograd.grad(g, theta)
        out.append(torch.stack([loss.detach(), g.detach(), h]))
    return torch.stack(out)


def test_second_derivative_poisson():
    """d/dλ E[x²] = 1 + 2λ and d²/dλ² E[x²] = 2 for x ~ Poisson(λ), by DiCE."""
    lam = 1.5
    res = _repeat_second_derivative((Poisson, lam), lambda x: x**2, n=2**15, repeats=24, seed0=0)
    mean, se = res.mean(0), res.std(0) / math.sqrt(res.shape[0])
    exact = torch.tensor([lam + lam**2, 1 + 2 * lam, 2.0], dtype=torch.float64)
    assert ((mean - exact).abs() < Z_CRIT * se).all(), (mean, exact, se)


def test_second_derivative_normal_mean():
    """d²/dμ² E[cos(x)] = -e^{-1/2} cos μ for x ~ N(μ, 1)."""
    mu = 0.4
    res = _repeat_second_derivative(
        (lambda m: Normal(m, 1.0), mu), torch.cos, n=2**15, repeats=24, seed0=100
    )
    mean, se = res.mean(0), res.std(0) / math.sqrt(res.shape[0])
    e = math.exp(-0.5)
    exact = torch.tensor(
        [e * math.cos(mu), -e * math.sin(mu), -e * math.cos(mu)], dtype=torch.float64
    )
    assert ((mean - exact).abs() < Z_CRIT * se).all(), (mean, exact, se)


def test_expectation_with_loo_baseline_first_and_second_order():
    """A LOO baseline enters DiCE as (1 - magic) b: first order unbiased and lower variance,
    second order still unbiased."""
    lam = 2.0
    vals = []
    for r in range(24):
        theta = torch.tensor(lam, dtype=torch.float64, requires_grad=True)
        loss = sg.expectation(
            lambda x: x**2,
            Poisson(theta),
            n=2**14,
            estimator=sg.ScoreFunction(B.LeaveOneOut()),
            seed=r,
        )
        (g,) = torch.autograd.grad(loss, theta, create_graph=True)
        (h,) = torch.autograd.grad(g, theta)
        vals.append(torch.stack([g.detach(), h]))
    v = torch.stack(vals)
    mean, se = v.mean(0), v.std(0) / math.sqrt(len(vals))
    exact = torch.tensor([1 + 2 * lam, 2.0], dtype=torch.float64)
    assert ((mean - exact).abs() < Z_CRIT * se).all(), (mean, se)


def test_expectation_mixed_second_derivative_with_f_own_parameter():
    """d²/dθdφ E_{N(θ,1)}[φx] = 1 needs E[∇θ log p · ∇φ f]: the surrogate keeps f on the graph
    in its score term, not only its detached value (|z| < Z_CRIT over 24 replicates)."""
    vals = []
    for r in range(24):
        theta = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
        phi = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
        for est in (sg.ScoreFunction(), sg.ScoreFunction(B.LeaveOneOut())):
            loss = sg.expectation(
                lambda x, phi=phi: phi * x, Normal(theta, 1.0), n=2**12, estimator=est, seed=r
            )
            (g,) = torch.autograd.grad(loss, theta, create_graph=True)
            (h,) = torch.autograd.grad(g, phi)
            vals.append(h)
    v = torch.stack(vals).reshape(24, 2)
    mean, se = v.mean(0), v.std(0) / math.sqrt(24)
    assert ((mean - 1.0).abs() < Z_CRIT * se).all(), (mean, se)


def test_expectation_value_and_backward_match_estimate_grad_mean():
    mu = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    loss = sg.expectation(
        lambda x: (x - 1) ** 2,
        Normal(mu, 1.0),
        n=2**16,
        seed=3,
        estimator=sg.ScoreFunction(B.LeaveOneOut()),
    )
    loss.backward()
    # exact: value (μ-1)² + 1 = 1.49, gradient 2(μ-1) = -1.4; SE of each well below 0.05
    assert abs(float(loss.detach()) - 1.49) < 0.05
    assert abs(float(mu.grad) + 1.4) < 0.08


def test_expectation_item_shape_keeps_decoder_gradient():
    """f's own dependence on other parameters gets its pathwise gradient; items are summed."""
    logits = torch.zeros(4, 3, dtype=torch.float64, requires_grad=True)
    w = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    loss = sg.expectation(
        lambda z: (z.sum(-1) - w) ** 2,
        torch.distributions.Bernoulli(logits=logits),
        n=2**15,
        seed=0,
        estimator=sg.ScoreFunction(B.LeaveOneOut()),
        item_shape=(4,),
    )
    loss.backward()
    # per item: s = sum of 3 Bernoulli(1/2): E(s - w)² = Var s + (E s - w)² = 0.75 + 1 = 1.75
    assert abs(float(loss.detach()) - 4 * 1.75) < 0.05
    # d/dw = Σ_items -2 (E s - w) = -8
    assert abs(float(w.grad) + 8.0) < 0.05
    # d/dθ_ij: p(1-p) ∂/∂p E(s-w)² = 0.25 · (2 (E s - w) + (1 - 2p)) = 0.25 · 2 = 0.5
    assert torch.allclose(logits.grad, torch.full_like(logits, 0.5), atol=0.05)


# --- score ------------------------------------------------------------------------------------


def test_score_matches_closed_form_normal():
    mu = torch.tensor([0.5, -1.0], dtype=torch.float64, requires_grad=True)
    log_sigma = torch.tensor([0.1, -0.2], dtype=torch.float64, requires_grad=True)
    x = torch.randn(7, 2, dtype=torch.float64)
    s = sg.score(
        lambda mu, log_sigma: Normal(mu, log_sigma.exp()), {"mu": mu, "log_sigma": log_sigma}, x
    )
    sigma = log_sigma.detach().exp()
    assert torch.allclose(s["mu"], (x - mu.detach()) / sigma**2)
    assert torch.allclose(s["log_sigma"], ((x - mu.detach()) / sigma) ** 2 - 1)


def test_score_falls_back_to_vmap_for_non_broadcasting_builders():
    """dist_fn(w) = N(X w, 1) cannot take a leading sample axis on w; scores come from vmap."""
    X = torch.randn(5, 3, dtype=torch.float64)
    w = torch.randn(3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(11, 5, dtype=torch.float64)
    s = sg.score(lambda w: Normal(X @ w, 1.0), {"w": w}, y)
    assert s["w"].shape == (11, 3)
    assert torch.allclose(s["w"], (y - X @ w.detach()) @ X)


def test_estimate_with_vmap_fallback_is_unbiased():
    X = torch.tensor([[1.0, 0.5], [0.2, -1.0], [0.3, 0.3]], dtype=torch.float64)
    w = torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True)
    est = sg.estimate_grad(
        lambda y: (y**2).sum(-1),
        lambda w: Normal(X @ w, 1.0),
        {"w": w},
        n=2**14,
        seed=0,
        estimator=sg.ScoreFunction(B.LeaveOneOut()),
    )
    # E Σ y² = |Xw|² + 3  →  ∇ = 2 Xᵀ X w
    exact = 2 * X.T @ X @ w.detach()
    assert_grad_unbiased(est, {"w": exact})


# --- streaming, determinism ------------------------------------------------------------------


def test_chunked_streaming_matches_statistics_and_counts():
    problem = P.get("mvn_quadratic", dim=4)
    _, exact = problem.exact()
    est = sg.estimate_grad(
        problem.f,
        problem.dist_fn,
        problem.params(),
        n=100_000,
        estimator=sg.ScoreFunction(B.LeaveOneOut()),
        seed=5,
        chunk_size=7_000,
    )
    assert est.n_units == 100_000 and est.n_evals == 100_000
    assert_grad_unbiased(est, exact, what="chunked")


def test_seed_reproducible_and_leaves_global_rng_alone():
    problem = P.get("normal_square")
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = sg.estimate_grad(problem.f, problem.dist_fn, problem.params(), n=1000, seed=7)
    after = torch.rand(1)
    b = sg.estimate_grad(problem.f, problem.dist_fn, problem.params(), n=1000, seed=7)
    assert torch.equal(before, after)
    assert torch.equal(a.grad["mu"], b.grad["mu"])


def test_per_sample_contributions_average_to_the_estimate():
    problem = P.get("normal_cos")
    est = sg.estimate_grad(
        problem.f, problem.dist_fn, problem.params(), n=256, seed=0, return_per_sample=True
    )
    assert est.per_sample["mu"].shape == (256,)
    assert torch.allclose(est.per_sample["mu"].mean(0), est.grad["mu"])
