"""Greeks by LR, pathwise and mixed estimators against QuantLib and closed forms.

False-alarm policy: each estimate is compared with its oracle by z = (estimate - exact)/SE and must
satisfy |z| < 4.42 (two-sided 1e-5 per comparison: a Bonferroni bound, valid however the Greeks
are correlated, keeps the whole suite below 1% even with ~1000 comparisons). The issue's "within
3 SE" is checked as a count: across N comparisons the number with |z| > 3 must not exceed the
smallest k with P(Binomial(N, 0.0027) > k) < 1e-4 (an independence approximation; the Greeks of
one option share paths, so this count is indicative, the 4.42 bound is the strict one).
"""

import math

import pytest
import torch
from scipy.stats import binom
from scipy.stats import t as student_t

from scoregrad.errors import (
    ControlVariateError,
    EstimatorNotApplicable,
    FunctionOutputError,
    ParameterError,
)
from scoregrad.finance import (
    GBM,
    ArithmeticAsian,
    AssetDigital,
    Barrier,
    Call,
    CashDigital,
    Custom,
    GeometricAsian,
    Heston,
    Lookback,
    Merton,
    PathControlVariate,
    Put,
    estimate_greeks,
    exact_greeks,
)
from scoregrad.finance import greeks as G
from scoregrad.testing import Z_CRIT

from . import oracle

Z = Z_CRIT  # 4.42: two-sided 1e-5 per comparison (scoregrad.testing)
ALL = ("delta", "gamma", "vega", "rho", "theta", "vanna", "volga")


def check(zs: list[float], label="", df=None):
    """With QMC the SE comes from R replicate means, so z is Student-t with df = R - 1: the
    threshold is then the t quantile with the same 1e-5 two-sided false-alarm rate."""
    zs = torch.as_tensor(zs, dtype=torch.float64)
    assert torch.isfinite(zs).all()
    bound = Z if df is None else float(student_t.isf(5e-6, df))
    assert (zs.abs() < bound).all(), (label, zs.abs().max().item(), bound)
    if df is not None:
        return 0, zs.numel()
    n = zs.numel()
    k = int(binom.isf(1e-4, n, 0.0027))  # P(X > k) < 1e-4
    over = int((zs.abs() > 3).sum())
    assert over <= k, (label, over, k, n)
    return over, n


def grid():
    import itertools

    pts = list(
        itertools.product((90.0, 100.0, 110.0), (95.0, 105.0), (0.15, 0.35), (73 / 365, 1.0))
    )
    cols = list(zip(*pts, strict=True))
    return [torch.tensor(c, dtype=torch.float64) for c in cols], pts


@pytest.mark.parametrize("option", ["call", "put"])
def test_lr_greeks_on_a_grid_match_quantlib(option):
    """24 options (spots x strikes x vols x maturities) in one simulation, 8 quantities each."""
    (S, K, V, T), pts = grid()
    model = GBM(S, V, 0.05, 0.02, T)
    payoff = Call(K) if option == "call" else Put(K)
    res = estimate_greeks(model, payoff, 100_000, greeks=ALL, seed=11)
    zs = []
    for i, (s, k, v, t) in enumerate(pts):
        ql = oracle.european("vanilla", s, k, v, 0.05, 0.02, t, option)
        for g, ex in ql.items():
            est = res.price[i] if g == "price" else res.greeks[g][i]
            se = res.price_se[i] if g == "price" else res.stderr[g][i]
            zs.append(float((est - ex) / se))
    check(zs, option)


def test_lr_autograd_engine_matches_quantlib():
    """The generic engine (scores by autograd through the core) on a smaller grid."""
    S = torch.tensor([90.0, 110.0], dtype=torch.float64)
    K = torch.tensor([100.0, 95.0], dtype=torch.float64)
    model = GBM(S, 0.3, 0.05, 0.02, 146 / 365)
    res = estimate_greeks(model, Call(K), 40_000, greeks=ALL, seed=5, engine="autograd")
    assert res.info["engine"] == "autograd"
    zs = []
    for i in range(2):
        ql = oracle.european("vanilla", float(S[i]), float(K[i]), 0.3, 0.05, 0.02, 146 / 365)
        zs += [float((res.greeks[g][i] - ql[g]) / res.stderr[g][i]) for g in ALL]
    check(zs)


def test_sufficient_statistic_kernel_equals_per_path_estimator(monkeypatch):
    """The one-date GBM kernel (moments of a basis) gives the per-path estimator's numbers."""
    m = GBM(torch.tensor([95.0, 100.0]), 0.25, 0.1, 0.03, 0.2)
    a = estimate_greeks(
        m,
        Call(torch.tensor([100.0, 104.0])),
        30_000,
        greeks=ALL,
        seed=2,
        chunk_size=7000,
        rng="torch",
    )
    monkeypatch.setattr(G.basis, "applies", lambda sim: False)
    b = estimate_greeks(
        m,
        Call(torch.tensor([100.0, 104.0])),
        30_000,
        greeks=ALL,
        seed=2,
        chunk_size=7000,
        rng="torch",
    )
    assert torch.allclose(a.price, b.price, rtol=1e-10)
    for g in ALL:
        assert torch.allclose(a.greeks[g], b.greeks[g], rtol=1e-8, atol=1e-12), g
        assert torch.allclose(a.stderr[g], b.stderr[g], rtol=1e-6), g


@pytest.mark.parametrize(
    "payoff,kind",
    [
        (CashDigital(100.0), "cash"),
        (AssetDigital(100.0), "asset"),
        (CashDigital(105.0, "put"), "cash"),
    ],
)
def test_digital_lr_and_mixed_succeed_where_pathwise_fails(payoff, kind):
    m = GBM(100.0, 0.25, 0.05, 0.02, 146 / 365)
    ql = oracle.european(
        kind, 100.0, float(payoff.strike), 0.25, 0.05, 0.02, 146 / 365, payoff.option
    )
    zs = []
    for method in ("lr", "mixed"):
        r = estimate_greeks(m, payoff, 100_000, method=method, greeks=ALL, seed=3)
        zs += [float((r.greeks[g] - ql[g]) / r.stderr[g]) for g in ALL]
        assert all(float(r.stderr[g]) > 0 for g in ALL)
    check(zs)
    with pytest.raises(EstimatorNotApplicable, match="method='lr'.*method='mixed'"):
        estimate_greeks(m, payoff, 1000, method="pathwise", greeks=("delta",))
    if kind == "cash":  # the pathwise derivative is identically zero: no graph to the path
        S = torch.tensor([[90.0], [110.0]], dtype=torch.float64, requires_grad=True)
        assert not payoff(S).requires_grad


def test_pathwise_and_mixed_call_greeks_match_closed_form():
    m = GBM(100.0, 0.25, 0.1, 0.03, 0.2)
    ex = exact_greeks(m, Call(100.0))
    pw = estimate_greeks(
        m, Call(100.0), 50_000, method="pathwise", greeks=("delta", "vega", "rho", "theta"), seed=4
    )
    mx = estimate_greeks(m, Call(100.0), 50_000, method="mixed", greeks=ALL, seed=5)
    zs = list(map(float, pw.z_scores(ex).values())) + list(map(float, mx.z_scores(ex).values()))
    check(zs)
    # the mixed gamma beats the LR gamma at the same n (Glasserman 2004, §7.3)
    lr = estimate_greeks(m, Call(100.0), 50_000, greeks=("gamma",), seed=6)
    assert mx.stderr["gamma"] < lr.stderr["gamma"]


def test_pathwise_second_order_refused_with_alternatives():
    m = GBM(100.0, 0.25, 0.1, 0.03, 0.2)
    with pytest.raises(EstimatorNotApplicable, match="method='mixed'"):
        estimate_greeks(m, Call(100.0), 1000, method="pathwise", greeks=("gamma",))
    with pytest.raises(EstimatorNotApplicable, match="method='lr'"):
        estimate_greeks(m, CashDigital(100.0), 1000, method="pathwise", greeks=("gamma",))
    with pytest.raises(EstimatorNotApplicable, match="method='lr'"):
        estimate_greeks(Merton(100.0, 0.2), Call(100.0), 1000, method="pathwise", greeks=("theta",))
    # a smooth user payoff may declare pathwise_order=2: e^{-rT} E[S_T²] has gamma
    # 2 e^{(2(r-q)+σ²)T} e^{-rT}
    sq = Custom(lambda S: S[..., -1] ** 2, pathwise_order=2)
    r = estimate_greeks(m, sq, 20_000, method="pathwise", greeks=("gamma",), seed=1)
    exact = 2 * math.exp((2 * 0.07 + 0.25**2) * 0.2) * math.exp(-0.1 * 0.2)
    check([float((r.greeks["gamma"] - exact) / r.stderr["gamma"])])


def test_geometric_asian_lr_matches_quantlib():
    m = GBM(100.0, 0.3, 0.05, 0.02, 1.0, dates=5)
    ql = oracle.geometric_asian(100.0, 100.0, 0.3, 0.05, 0.02, 1.0, 5)
    ex = exact_greeks(m, GeometricAsian(100.0))  # our theta convention: dates scale with T
    for method, kw in (("lr", {}), ("lr", {"sampler": "qmc", "replicates": 16}), ("mixed", {})):
        r = estimate_greeks(
            m, GeometricAsian(100.0), 65_536, method=method, greeks=ALL, seed=8, **kw
        )
        zs = [float((r.greeks[g] - ql[g]) / r.stderr[g]) for g in ("delta", "gamma", "vega", "rho")]
        zs += [float((r.greeks[g] - ex[g]) / r.stderr[g]) for g in ("theta", "vanna", "volga")]
        zs.append(float((r.price - ql["price"]) / r.price_se))
        check(zs, method, df=15 if kw else None)


def test_arithmetic_asian_with_geometric_control_variate():
    """LR + geometric-Asian control variate vs mixed + QMC (both unbiased): their difference is a
    z-test; the control variate cuts the LR standard errors several-fold."""
    m = GBM(100.0, 0.2, 0.05, 0.0, 1.0, dates=12, bridge=True)
    p = ArithmeticAsian(100.0)
    g = ("delta", "vega", "rho", "theta")
    cv = estimate_greeks(m, p, 40_000, greeks=g, control_variate="geometric", seed=9)
    plain = estimate_greeks(m, p, 40_000, greeks=g, seed=9)
    ref = estimate_greeks(m, p, 65_536, method="mixed", greeks=g, sampler="qmc", seed=10)
    zs = [
        float((cv.greeks[k] - ref.greeks[k]) / torch.hypot(cv.stderr[k], ref.stderr[k])) for k in g
    ]
    zs.append(float((cv.price - ref.price) / torch.hypot(cv.price_se, ref.price_se)))
    check(zs, df=15)  # conservative: the QMC reference's SE has 15 degrees of freedom
    for k in g:
        assert cv.stderr[k] < plain.stderr[k] / 3, k


def test_barrier_lr_against_quantlib_with_bgk_correction():
    """Up-and-out call monitored on 50 dates vs QuantLib's continuous formula with the
    Broadie-Glasserman-Kou shift (bump-and-reprice Greeks). BGK is an approximation (error
    o(1/√m)), so the tolerance is 4.42 SE plus 2% of the oracle's magnitude (stated)."""
    m = GBM(100.0, 0.25, 0.05, 0.0, 1.0, dates=50)
    p = Barrier(100.0, 130.0, "up-and-out")
    r = estimate_greeks(m, p, 200_000, greeks=("delta", "gamma", "vega", "rho"), seed=12)
    ql = oracle.barrier_bgk(100.0, 100.0, 130.0, 0.25, 0.05, 0.0, 1.0, 50)
    for k, v in ql.items():
        est = r.price if k == "price" else r.greeks[k]
        se = r.price_se if k == "price" else r.stderr[k]
        assert abs(float(est) - v) < Z * float(se) + 0.02 * abs(v), (k, float(est), v, float(se))


def test_barrier_breached_at_start_names_the_alternative():
    m = GBM(100.0, 0.25, 0.05, 0.0, 1.0, dates=4)
    with pytest.raises(ParameterError, match="rebate"):
        estimate_greeks(m, Barrier(100.0, 95.0, "up-and-out"), 1000)
    with pytest.raises(ParameterError, match="vanilla"):
        estimate_greeks(m, Barrier(100.0, 105.0, "down-and-in"), 1000)


def test_heston_lr_agrees_with_pathwise_and_quantlib():
    """LR and pathwise are both unbiased for the Euler scheme: their difference is a z-test. The
    scheme's price differs from QuantLib's exact Heston price by its discretisation bias, which
    must be small (here < 0.5% with 8 steps per quarter)."""
    m = Heston(
        100.0, 0.2, 0.05, 0.01, 1.0, dates=4, kappa=2.0, mean_var=0.04, xi=0.3, corr=-0.7, steps=8
    )
    g = ("delta", "vega", "rho", "theta")
    lr = estimate_greeks(m, Call(100.0), 16_000, greeks=g, seed=13)
    pw = estimate_greeks(m, Call(100.0), 8_000, method="pathwise", greeks=g, seed=14)
    zs = [float((lr.greeks[k] - pw.greeks[k]) / torch.hypot(lr.stderr[k], pw.stderr[k])) for k in g]
    check(zs)
    ql = oracle.heston(100.0, 0.2, 0.05, 0.01, 1.0, 100.0, 2.0, 0.04, 0.3, -0.7)
    assert abs(float(pw.price) - ql) < Z * float(pw.price_se) + 0.005 * ql


def test_merton_lr_matches_closed_form():
    m = Merton(100.0, 0.2, 0.05, 0.01, 1.0, jump_rate=1.0, jump_mean=-0.1, jump_vol=0.15)
    ex = exact_greeks(m, Call(100.0))
    r = estimate_greeks(m, Call(100.0), 50_000, greeks=ALL, seed=15)
    pw = estimate_greeks(m, Call(100.0), 20_000, method="mixed", greeks=ALL, seed=16)
    check(list(map(float, r.z_scores(ex).values())) + list(map(float, pw.z_scores(ex).values())))


@pytest.mark.parametrize("sampler", ["antithetic", "qmc"])
def test_antithetic_and_qmc_lr_are_unbiased(sampler):
    """QMC uses 64 replicates here: with a control variate the coefficients are fitted across
    replicates, and with few replicates (16) the reported SE is optimistic by ~25% (measured in
    benchmarks/finance_bg_table.py); 64 keeps it calibrated."""
    m = GBM(100.0, 0.25, 0.1, 0.03, 0.2)
    ex = exact_greeks(m, Call(100.0))
    zs = []
    for cv in (None, "terminal"):
        r = estimate_greeks(
            m,
            Call(100.0),
            65_536,
            greeks=ALL,
            sampler=sampler,
            replicates=64,
            control_variate=cv,
            seed=17,
        )
        zs += list(map(float, r.z_scores(ex).values()))
    check(zs, sampler, df=63 if sampler == "qmc" else None)


def test_lookback_lr_agrees_with_pathwise():
    m = GBM(100.0, 0.3, 0.05, 0.0, 0.5, dates=8)
    p = Lookback(option="call", kind="floating")
    g = ("delta", "vega", "rho")
    lr = estimate_greeks(m, p, 40_000, greeks=g, seed=18)
    pw = estimate_greeks(m, p, 40_000, method="pathwise", greeks=g, seed=19)
    check(
        [float((lr.greeks[k] - pw.greeks[k]) / torch.hypot(lr.stderr[k], pw.stderr[k])) for k in g]
    )


def test_batch_grid_and_chunking():
    """Spots (3, 1) x strikes (2,) = 6 options in one simulation, streamed in many chunks."""
    S = torch.tensor([[90.0], [100.0], [110.0]], dtype=torch.float64)
    K = torch.tensor([95.0, 105.0], dtype=torch.float64)
    m = GBM(S, 0.25, 0.05, 0.0, 0.5)
    ex = exact_greeks(m, Call(K))
    for method in ("lr", "pathwise", "mixed"):
        g = ("delta", "vega") if method == "pathwise" else ("delta", "gamma", "vega")
        r = estimate_greeks(m, Call(K), 30_000, method=method, greeks=g, seed=20, chunk_size=4096)
        assert r.price.shape == (3, 2) and r.info["chunks"] == 8 and r.n_units == 30_000
        check(
            [
                z
                for v in r.z_scores({k: ex[k] for k in ("price", *g)}).values()
                for z in v.flatten().tolist()
            ]
        )


def test_float32_and_dtype():
    m = GBM(100.0, 0.25, 0.1, 0.03, 0.2)
    r = estimate_greeks(m, Call(100.0), 100_000, greeks=ALL, seed=21, dtype=torch.float32)
    assert r.price.dtype == torch.float32
    check(list(map(float, r.z_scores(exact_greeks(m, Call(100.0))).values())))


def test_errors_name_the_fix():
    m = GBM(100.0, 0.25, 0.1, 0.03, 0.2)
    with pytest.raises(FunctionOutputError, match="shape"):
        estimate_greeks(m, Custom(lambda S: S), 100)  # returns the path, not one value
    with pytest.raises(EstimatorNotApplicable, match="method='lr'"):
        estimate_greeks(m, Call(100.0), 100, method="pathwise", control_variate="terminal")
    with pytest.raises(ParameterError, match="unknown Greek"):
        estimate_greeks(m, Call(100.0), 100, greeks=("charm",))
    with pytest.raises(EstimatorNotApplicable, match="terminal"):
        estimate_greeks(m, Call(100.0), 100, control_variate="geometric")
    with pytest.raises(ControlVariateError, match="shape"):
        cv = PathControlVariate(lambda S: S, lambda spot, **_: spot)
        estimate_greeks(m, Call(100.0), 100, control_variate=cv)


# Broadie & Glasserman (1996), Table 1: European call, r = 0.10, q = 0.03, σ = 0.25, T = 0.2,
# K = 100, 10,000 paths. Their LR standard errors at S₀ = 100, without and with the S_T control.
BG_SE = {"delta": 0.013, "vega": 1.086, "gamma": 0.002, "rho": 0.241, "theta": 0.754}
BG_SE_CV = {"delta": 0.008, "vega": 0.955, "gamma": 0.002, "rho": 0.162, "theta": 0.649}


def test_broadie_glasserman_table_1():
    g = tuple(BG_SE)
    zs = []
    for s0 in (90.0, 100.0, 110.0):
        m = GBM(s0, 0.25, 0.1, 0.03, 0.2)
        ex = exact_greeks(m, Call(100.0))
        lr = estimate_greeks(m, Call(100.0), 10_000, greeks=g, seed=22)
        cv = estimate_greeks(m, Call(100.0), 10_000, greeks=g, seed=23, control_variate="terminal")
        zs += list(map(float, lr.z_scores(ex).values())) + list(
            map(float, cv.z_scores(ex).values())
        )
        if s0 == 100.0:  # the paper reports its SEs to 3 decimals
            for k in g:
                assert round(float(lr.stderr[k]), 3) <= BG_SE[k], k
                assert round(float(cv.stderr[k]), 3) <= BG_SE_CV[k], k
    check(zs)


@pytest.mark.slow
def test_standard_errors_are_calibrated():
    """Over 200 seeds the z-scores of LR (plain, antithetic, control variate) have sd ≈ 1:
    an SE that is too small would make every other test here meaningless."""
    m = GBM(100.0, 0.25, 0.1, 0.03, 0.2)
    ex = exact_greeks(m, Call(100.0))
    for kw in ({}, {"sampler": "antithetic"}, {"control_variate": "terminal"}):
        zs = torch.tensor(
            [
                [
                    float(v)
                    for v in estimate_greeks(
                        m, Call(100.0), 4000, greeks=("delta", "gamma", "vega"), seed=s, **kw
                    )
                    .z_scores(ex)
                    .values()
                ]
                for s in range(200)
            ]
        )
        sd = zs.std(0)
        assert ((sd > 0.8) & (sd < 1.25)).all(), (kw, sd)


def test_lr_weights_equal_dice_derivatives_of_core_expectation():
    """The LR delta and gamma are the first and second derivatives of the core's DiCE surrogate
    ``scoregrad.expectation`` on the same paths (no baseline): same estimator, two doors."""
    import scoregrad as sg

    m = GBM(100.0, 0.25, 0.1, 0.03, 0.2)
    p = m.params()
    D = math.exp(-0.1 * 0.2)

    def f(x):
        return D * torch.relu(x[:, -1] - 100.0)

    loss = sg.expectation(f, m.dist(**p), n=20_000, seed=7)
    (g,) = torch.autograd.grad(loss, p["spot"], create_graph=True)
    (h,) = torch.autograd.grad(g, p["spot"])
    d = m.dist(**{k: v.detach() for k, v in p.items()})
    with torch.random.fork_rng():
        torch.manual_seed(7)
        x = d.sample((20_000,))
    w = d.lr_weights(d.noise(x), {"delta", "gamma"})
    fx = f(x)
    assert torch.allclose(g, (fx * w["delta"]).mean(), rtol=1e-9)
    assert torch.allclose(h, (fx * w["gamma"]).mean(), rtol=1e-9)


@pytest.mark.parametrize("baseline", [True, False])
def test_basis_kernel_grid_and_device_algebra_equal_per_path(monkeypatch, baseline):
    """A spot x strike grid through the kernel, with its small algebra in NumPy (CPU) and in torch
    (the accelerator form), equals the per-path estimator in float32 and float64."""
    from scoregrad.finance.greeks import basis

    m = GBM(torch.tensor([[95.0], [105.0]]), 0.25, 0.1, 0.03, 0.2)
    pay = Call(torch.tensor([90.0, 100.0, 110.0]))
    kw = dict(greeks=ALL, seed=4, chunk_size=5000, rng="torch", baseline=baseline)
    real = basis.BasisKernel

    def torch_algebra(sim, sizes):
        return real(sim, sizes, host=False)

    for dtype, tol in ((torch.float64, 1e-8), (torch.float32, 2e-3)):
        a = estimate_greeks(m, pay, 20_000, dtype=dtype, **kw)
        assert a.info["kernel"] == "basis" and a.price.shape == (2, 3)
        with monkeypatch.context() as mp:
            mp.setattr(basis, "BasisKernel", torch_algebra)
            b = estimate_greeks(m, pay, 20_000, dtype=dtype, **kw)
        with monkeypatch.context() as mp:
            mp.setattr(G.basis, "applies", lambda sim: False)
            c = estimate_greeks(m, pay, 20_000, dtype=dtype, **kw)
        assert c.info["kernel"] == "per-path"
        for g in ("price", *ALL):
            ga = a.price if g == "price" else a.greeks[g]
            gb = b.price if g == "price" else b.greeks[g]
            gc = c.price if g == "price" else c.greeks[g]
            assert torch.allclose(ga, gb, rtol=1e-12, atol=1e-12), g
            scale = gc.abs().max() + (c.price_se if g == "price" else c.stderr[g]).max()
            assert ((ga - gc).abs() <= tol * scale).all(), (g, dtype)


def test_basis_memo_follows_parameter_values():
    """Coefficients memoised on the model are rebuilt when its values change."""
    m = GBM(100.0, 0.25, 0.1, 0.03, 0.2)
    a = estimate_greeks(m, Call(100.0), 10_000, seed=0)
    m.values["vol"] = 0.35
    b = estimate_greeks(m, Call(100.0), 10_000, seed=0)
    fresh = estimate_greeks(GBM(100.0, 0.35, 0.1, 0.03, 0.2), Call(100.0), 10_000, seed=0)
    assert float(a.price) != float(b.price)
    assert torch.equal(b.price, fresh.price) and torch.equal(b.greeks["vega"], fresh.greeks["vega"])


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("name", ["spot", "vol", "rate", "div", "maturity"])
@pytest.mark.parametrize("bad", [NAN, INF])
def test_non_finite_parameters_are_named(name, bad):
    kw = dict(spot=100.0, vol=0.2, rate=0.05, div=0.0, maturity=1.0)
    kw[name] = bad
    with pytest.raises(ParameterError, match=rf"^{name} = .*(NaN|infinite)"):
        GBM(**kw)
    kw[name] = torch.tensor([1.0, bad])  # a batch with one bad entry
    with pytest.raises(ParameterError, match=rf"^{name} = "):
        GBM(**kw)


@pytest.mark.parametrize(
    "model,name",
    [(Heston, k) for k in ("kappa", "mean_var", "xi", "corr")]
    + [(Merton, k) for k in ("jump_rate", "jump_mean", "jump_vol")],
)
def test_non_finite_model_specific_parameters_are_named(model, name):
    with pytest.raises(ParameterError, match=rf"^{name} = nan is not a number"):
        model(100.0, 0.2, **{name: NAN})


@pytest.mark.parametrize("payoff", [Call, Put, CashDigital, ArithmeticAsian])
def test_non_finite_strike_is_named(payoff):
    with pytest.raises(ParameterError, match=r"^strike = .*NaN or infinite"):
        payoff(NAN)
    with pytest.raises(ParameterError, match=r"^barrier = "):
        Barrier(100.0, INF)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_refused(dtype):
    """float16 gave all NaN (squared payoffs overflow); it is refused, naming float32."""
    with pytest.raises(ParameterError, match="float32"):
        estimate_greeks(GBM(100.0, 0.2, 0.05), Call(100.0), 1000, dtype=dtype, seed=0)


def test_float32_kernel_is_unbiased_at_small_n():
    """The float32 fast path (closed-form kernel, float64 algebra) against Black-Scholes."""
    m = GBM(100.0, 0.25, 0.1, 0.03, 0.2)
    ex = exact_greeks(m, Call(100.0), ALL)
    zs = []
    for seed in range(4):
        r = estimate_greeks(m, Call(100.0), 10_000, greeks=ALL, seed=seed, dtype=torch.float32)
        assert r.info["kernel"] == "basis"
        zs += [float(v) for v in r.z_scores(ex).values()]
    check(zs)
