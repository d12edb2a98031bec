"""Property tests (hypothesis): shapes and dtypes of estimates follow the parameters."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Normal

import scoregrad as sg
from scoregrad import baselines as B

shapes = st.sampled_from([(), (1,), (3,), (2, 3), (2, 1, 2)])
dtypes = st.sampled_from([torch.float32, torch.float64])
estimators = st.sampled_from(
    [
        lambda: sg.ScoreFunction(),
        lambda: sg.ScoreFunction(B.LeaveOneOut()),
        lambda: sg.ScoreFunction(control_variate=sg.control_variates.ScoreControlVariate()),
        lambda: sg.ScoreFunction(sampler=sg.sampling.Antithetic()),
        lambda: sg.ScoreFunction(sampler=sg.sampling.QMC(4)),
    ]
)


@settings(max_examples=40, deadline=None)
@given(shape=shapes, dtype=dtypes, make=estimators, n=st.sampled_from([8, 32, 64]))
def test_shapes_and_dtypes_follow_parameters(shape, dtype, make, n):
    mu = torch.zeros(shape, dtype=dtype, requires_grad=True)
    log_sigma = torch.zeros(shape, dtype=dtype, requires_grad=True)
    est = sg.estimate_grad(
        lambda x: (x**2).reshape(x.shape[0], -1).sum(1),
        lambda mu, log_sigma: Normal(mu, log_sigma.exp()),
        {"mu": mu, "log_sigma": log_sigma},
        n=n,
        estimator=make(),
        seed=0,
    )
    for k in ("mu", "log_sigma"):
        assert est.grad[k].shape == shape and est.grad[k].dtype == dtype
        assert est.stderr[k].shape == shape and est.stderr[k].dtype == dtype
        assert torch.isfinite(est.grad[k]).all()
    assert est.value.shape == () and est.value.dtype == dtype
    assert est.n == n and est.n_evals == n


@settings(max_examples=30, deadline=None)
@given(shape=shapes, dtype=dtypes, n=st.integers(1, 20))
def test_score_shapes(shape, dtype, n):
    mu = torch.zeros(shape, dtype=dtype, requires_grad=True)
    x = torch.randn(n, *shape, dtype=dtype)
    s = sg.score(lambda mu: Normal(mu, 1.0), {"mu": mu}, x)
    assert s["mu"].shape == (n, *shape) and s["mu"].dtype == dtype
    assert torch.allclose(s["mu"], x)
