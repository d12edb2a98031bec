"""Path models: densities, scores (closed form vs autograd), reparameterisation, samplers.

Statistical tests use |z| < 4.42 per component (two-sided false-alarm rate 1e-5 each), so the
whole suite's chance of a false alarm stays below 1%.
"""

import math

import pytest
import torch

import scoregrad as sg
from scoregrad.errors import ParameterError
from scoregrad.finance import GBM, Heston, Merton
from scoregrad.finance.models import brownian_bridge, fractions_of
from scoregrad.testing import Z_CRIT

Z = Z_CRIT  # 4.42: two-sided 1e-5 per comparison (scoregrad.testing)
f64 = torch.float64


def models():
    return [
        GBM(100.0, 0.25, 0.1, 0.03, 0.2),
        GBM(torch.tensor([90.0, 110.0]), 0.3, 0.05, 0.01, 1.0, dates=[0.1, 0.5, 1.0]),
        Heston(100.0, 0.2, 0.05, 0.01, 1.0, dates=2, steps=3),
        Merton(100.0, 0.2, 0.05, 0.01, 1.0, dates=3, jump_rate=2.0),
    ]


@pytest.mark.parametrize("model", models(), ids=lambda m: type(m).__name__)
def test_path_noise_roundtrip_and_shapes(model):
    torch.manual_seed(0)
    d = model.dist(**model.params())
    x = d.sample((7,))
    assert x.shape == (7, *d.batch_shape, *d.event_shape)
    assert d.log_prob(x).shape == (7, *d.batch_shape)
    assert torch.allclose(d.path(d.noise(x)), x, rtol=1e-10, atol=1e-10)
    assert d.prices(x).shape[-1] == model.n_dates


@pytest.mark.parametrize("model", models(), ids=lambda m: type(m).__name__)
def test_scores_have_mean_zero(model):
    """E[∇θ log p] = 0: a density inconsistent with the sampler would fail this z-test."""
    p = model.params()
    d = model.dist(**{k: v.detach() for k, v in p.items()})
    x = d.sample((40_000,))
    s = sg.score(model.dist, p, x)
    for k, v in s.items():
        v = v.reshape(v.shape[0], -1)
        z = v.mean(0) / (v.std(0) / math.sqrt(v.shape[0]))
        assert (z.abs() < Z).all(), (k, z)


def test_gbm_log_prob_matches_lognormal():
    from scipy.stats import lognorm

    m = GBM(100.0, 0.25, 0.1, 0.03, 0.2)
    d = m.dist(**m.params())
    x = torch.tensor([[80.0], [100.0], [130.0]], dtype=f64)
    mu = math.log(100.0) + (0.1 - 0.03 - 0.5 * 0.25**2) * 0.2
    ref = lognorm.logpdf(x.squeeze(-1).numpy(), s=0.25 * math.sqrt(0.2), scale=math.exp(mu))
    assert torch.allclose(d.log_prob(x).detach(), torch.as_tensor(ref), atol=1e-12)


@pytest.mark.parametrize("dates", [1, 4, [0.05, 0.3, 1.0]])
def test_closed_form_gbm_weights_equal_autograd_scores(dates):
    """GBMPaths.lr_weights (first and second order) == autograd scores of log_prob."""
    m = GBM(torch.tensor([95.0, 105.0]), 0.3, 0.04, 0.02, 0.7, dates=dates)
    p = {k: v.detach().expand(2) for k, v in m.params().items()}
    d = m.dist(**p)
    torch.manual_seed(1)
    x = d.sample((50,))
    z = d.noise(x)
    need = {"delta", "gamma", "vega", "rho", "theta", "vanna", "volga"}
    w = d.lr_weights(z, need)
    model = sg.core.SampleModel.expand(m.dist, p, 50)
    s = model.score(x, create_graph=True)
    L = model.leaves
    ds = torch.autograd.grad(s["spot"].sum(), [L["spot"], L["vol"]], retain_graph=True)
    dv = torch.autograd.grad(s["vol"].sum(), L["vol"])[0]
    ref = {
        "delta": s["spot"],
        "vega": s["vol"],
        "rho": s["rate"],
        "theta": s["maturity"],
        "gamma": s["spot"] ** 2 + ds[0],
        "vanna": s["spot"] * s["vol"] + ds[1],
        "volga": s["vol"] ** 2 + dv,
    }
    for k in need:
        assert torch.allclose(w[k], ref[k].detach(), rtol=1e-9, atol=1e-9), k


def test_brownian_bridge_is_orthogonal():
    """The bridge maps i.i.d. normals to i.i.d. normal increments: an orthogonal linear map."""
    t = fractions_of([0.1, 0.25, 0.3, 0.7, 0.8, 1.0])
    M = brownian_bridge(torch.eye(6, dtype=f64), t)
    assert torch.allclose(M.T @ M, torch.eye(6, dtype=f64), atol=1e-12)
    # the first coordinate alone fixes the terminal value W(1) = Σ √Δt_k ε_k
    dt = torch.diff(torch.cat([torch.zeros(1, dtype=f64), t]))
    assert torch.allclose((M[1:] * dt.sqrt()).sum(-1), torch.zeros(5, dtype=f64), atol=1e-12)


def test_core_estimate_grad_works_on_path_distributions():
    """Undiscounted E[S_T] = S₀e^{(r-q)T}: the core's score-function estimator on GBMPaths."""
    m = GBM(100.0, 0.25, 0.1, 0.03, 0.2)
    p = m.params()
    rest = {k: p[k].detach() for k in ("vol", "rate", "div", "maturity")}
    est = sg.estimate_grad(
        lambda x: x[:, -1],
        lambda spot: m.dist(spot=spot, **rest),
        {"spot": p["spot"]},
        n=50_000,
        seed=3,
        estimator=sg.ScoreFunction(sg.baselines.LeaveOneOut()),
    )
    exact = math.exp((0.1 - 0.03) * 0.2)
    assert abs(float(est.z_scores({"spot": exact})["spot"])) < Z


def test_core_samplers_draw_paths():
    m = GBM(100.0, 0.25, 0.1, 0.03, 1.0, dates=8, bridge=True)
    d = m.dist(**{k: v.detach() for k, v in m.params().items()})
    model = sg.core.SampleModel.of(d, 64)
    x, block = sg.sampling.QMC(replicates=4).draw(model)
    assert x.shape == (64, 8) and block == 16
    x, block = sg.sampling.Antithetic().draw(model)
    assert block == 2 and torch.allclose(d.noise(x)[0::2], -d.noise(x)[1::2], atol=1e-8)


@pytest.mark.parametrize(
    "bad,word",
    [
        (dict(vol=0.0), "vol"),
        (dict(vol=-0.2), "vol"),
        (dict(spot=0.0), "spot"),
        (dict(maturity=0.0), "maturity"),
        (dict(maturity=-1.0), "maturity"),
    ],
)
def test_non_positive_parameters_are_rejected_with_a_fix(bad, word):
    kw = dict(spot=100.0, vol=0.2, rate=0.05, maturity=1.0) | bad
    for cls in (GBM, Heston, Merton):
        with pytest.raises(ParameterError, match=word):
            cls(**kw)


def test_bad_dates_and_heston_corr():
    with pytest.raises(ParameterError, match="increasing fractions"):
        GBM(100.0, 0.2, dates=[0.5, 0.2, 1.0])
    with pytest.raises(ParameterError, match="corr"):
        m = Heston(100.0, 0.2, corr=-1.0)
        m.dist(**m.params())
