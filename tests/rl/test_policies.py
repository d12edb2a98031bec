"""Gaussian policy options: the squashed action's log-density against a numeric density, the
AR(1) noise's conditional log-probs against the joint Gaussian density, and its statistics."""

import math

import numpy as np
import pytest
import torch
from gymnasium import spaces
from scipy.stats import multivariate_normal, norm

from scoregrad.errors import ScoregradError
from scoregrad.testing import Z_CRIT

OBS = spaces.Box(-1.0, 1.0, (3,), np.float32)
ACT = spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32))


def _policy(**kw):
    from scoregrad.rl import make_policy

    torch.manual_seed(0)
    pi = make_policy(OBS, ACT, hidden=(8,), log_std=-0.5, **kw).double()
    with torch.no_grad():  # a mean away from 0, so the squash is not near-linear
        pi.net[-1].bias[:2] = torch.tensor([0.7, -0.4])
    return pi


def test_tanh_log_density_matches_the_numeric_density():
    """p(a) of a = c + h tanh(u), u ~ N(μ, σ): the derivative of its CDF, per coordinate."""
    pi = _policy(squash="tanh")
    s = torch.tensor([[0.2, -0.3, 0.5]], dtype=torch.float64)
    mean, std = (x[0].detach().numpy() for x in pi.mean_std(s))
    low, high = ACT.low.astype(float), ACT.high.astype(float)
    c, h = (low + high) / 2, (high - low) / 2
    for a in ([-1.5, 0.2], [0.3, 0.9], [1.9, 0.5]):
        u = np.arctanh((np.array(a) - c) / h)
        cdf = lambda x, j: norm.cdf((np.arctanh((x - c[j]) / h[j]) - mean[j]) / std[j])
        numeric = sum(
            math.log((cdf(a[j] + 1e-6, j) - cdf(a[j] - 1e-6, j)) / 2e-6) for j in range(2)
        )
        got = float(pi.env_log_prob(s, torch.as_tensor(u[None])).detach())
        assert abs(got - numeric) < 1e-5, (a, got, numeric)
    # the environment gets the squashed action, inside the box
    env_a = pi.to_env(torch.tensor([[50.0, -50.0]], dtype=torch.float64))
    assert np.allclose(env_a, [[2.0, 0.0]])


def test_ar1_conditionals_give_the_joint_gaussian_density():
    """Σ_t log π(u_t | h_t) at a fixed state = log N(u; μ, σ² ρ^|i−j|) (AR(1) covariance)."""
    rho = 0.8
    pi = _policy(noise_corr=rho)
    s = torch.tensor([[0.1, 0.4, -0.2]], dtype=torch.float64)
    T = 6
    g = torch.Generator().manual_seed(3)
    us, memory, logp = [], None, 0.0
    for _ in range(T):
        u = pi.sample(s, g, memory)
        logp += float(pi.dist(s, memory).log_prob(u).detach())
        memory = (s, u, torch.tensor([True]))
        us.append(u[0])
    u = torch.stack(us).numpy()  # (T, 2)
    mean, std = (x[0].detach().numpy() for x in pi.mean_std(s))
    cov = rho ** np.abs(np.subtract.outer(np.arange(T), np.arange(T)))
    want = sum(
        multivariate_normal(np.full(T, mean[j]), std[j] ** 2 * cov).logpdf(u[:, j])
        for j in range(2)
    )
    assert abs(logp - want) < 1e-8


def test_ar1_noise_has_the_stated_autocorrelation():
    rho, n = 0.9, 4000
    pi = _policy(noise_corr=rho)
    s = torch.zeros(1, 3, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    memory, eps = None, []
    mean, std = (x[0, 0].item() for x in pi.mean_std(s))
    for _ in range(n):
        u = pi.sample(s, g, memory)
        memory = (s, u, torch.tensor([True]))
        eps.append((u[0, 0].item() - mean) / std)
    e = np.array(eps)
    # lag-1 autocorrelation: its standard error for an AR(1) series is √((1 − ρ²)/n) (Bartlett)
    r1 = np.corrcoef(e[:-1], e[1:])[0, 1]
    assert abs(r1 - rho) / math.sqrt((1 - rho**2) / n) < Z_CRIT
    assert 0.7 < e.var() < 1.3


def test_bad_policy_options():
    with pytest.raises(ScoregradError, match="squash"):
        _policy(squash="sigmoid")
    with pytest.raises(ScoregradError, match="noise_corr"):
        _policy(noise_corr=1.0)


def test_gaussian_options_on_discrete_actions_are_named_as_ignored():
    """A Categorical policy has no squash, state-dependent std or noise correlation: options set
    away from the Gaussian policy's defaults are named in a warning, the defaults pass silently."""
    import warnings

    from scoregrad.rl.policies import CategoricalPolicy, IgnoredOptionWarning, make_policy

    obs, act = spaces.Box(-1.0, 1.0, (4,)), spaces.Discrete(2)
    with pytest.warns(IgnoredOptionWarning, match=r"squash, state_std configure a Gaussian"):
        policy = make_policy(obs, act, (8,), squash="tanh", state_std=True)
    assert isinstance(policy, CategoricalPolicy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_policy(obs, act, (8,), 0.0, squash="clip", state_std=False, noise_corr=0.0)
