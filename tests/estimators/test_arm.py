"""ARM and DisARM: unbiasedness z-tests, exact variances on the RELAX toy, both doors, errors.

False-alarm rate: each z-test uses |z| < 4.42 (1e-5 per component, fixed seeds).
"""

import itertools

import pytest
import torch
import torch.distributions as D

import scoregrad as sg
from scoregrad.problems import bernoulli_toy
from scoregrad.testing import Z_CRIT, assert_grad_unbiased, mean_z, variance_z

T = 0.499


def _nonlinear(b):
    # couples the elements, so that neither estimator is exact
    w = torch.tensor([1.0, -2.0, 0.5], dtype=b.dtype)
    return (b * w).sum(-1) ** 2 + b.prod(-1) * 3.0


def _exact_nonlinear(logits):
    p = torch.sigmoid(logits)
    total = 0.0
    for bits in itertools.product([0.0, 1.0], repeat=3):
        b = torch.tensor(bits, dtype=logits.dtype)
        prob = torch.prod(torch.where(b > 0, p, 1 - p))
        total = total + prob * _nonlinear(b.unsqueeze(0))[0]
    return total


@pytest.mark.parametrize("cls", [sg.ARM, sg.DisARM])
def test_unbiased_on_bernoulli_toy(cls):
    prob = bernoulli_toy(t=T, logits=(0.0, 0.7, -1.3))
    params = prob.params()
    est = sg.estimate_grad(prob.f, prob.dist_fn, params, n=20_000, estimator=cls(), seed=1)
    value, grad = prob.exact(params)
    assert_grad_unbiased(est, grad)
    assert abs(float(est.value - value)) < Z_CRIT * float(est.value_stderr)
    assert est.n_evals == 40_000


@pytest.mark.parametrize("cls", [sg.ARM, sg.DisARM])
def test_unbiased_nonlinear_through_probs(cls):
    # parameters enter through probs = sigmoid(theta): the chain rule goes through lazy logits
    theta = torch.tensor([0.3, -0.8, 1.1], dtype=torch.float64, requires_grad=True)
    est = sg.estimate_grad(
        _nonlinear,
        lambda theta: D.Bernoulli(probs=torch.sigmoid(theta)),
        {"theta": theta},
        n=40_000,
        estimator=cls(),
        seed=2,
    )
    (g,) = torch.autograd.grad(_exact_nonlinear(theta), theta)
    assert_grad_unbiased(est, {"theta": g})


def test_vmap_fallback_for_dist_fn_that_does_not_broadcast():
    # a design matrix times a weight vector cannot broadcast over a leading sample axis
    X = torch.tensor([[1.0, 0.5], [0.0, -1.0], [2.0, 1.0]], dtype=torch.float64)
    w = torch.tensor([0.2, -0.4], dtype=torch.float64, requires_grad=True)

    def dist_fn(w):
        return D.Bernoulli(logits=X @ w)

    est = sg.estimate_grad(_nonlinear, dist_fn, {"w": w}, n=40_000, estimator=sg.DisARM(), seed=3)
    (g,) = torch.autograd.grad(_exact_nonlinear(X @ w), w)
    assert_grad_unbiased(est, {"w": g})


def test_relax_toy_exact_variances():
    prob = bernoulli_toy(t=T, logits=(0.0,))
    params = prob.params()
    arm = sg.estimate_grad(
        prob.f, prob.dist_fn, params, n=200_000, estimator=sg.ARM(), seed=4, return_per_sample=True
    )
    z = variance_z(arm.per_sample["logits"], torch.tensor((1 - 2 * T) ** 2 / 48))
    assert z.abs().max() < Z_CRIT
    dis = sg.estimate_grad(prob.f, prob.dist_fn, params, n=1000, estimator=sg.DisARM(), seed=4)
    assert float(dis.stderr["logits"]) == 0.0  # DisARM's pair always differs at θ = 0: exact
    assert float(dis.grad["logits"]) == pytest.approx(0.25 * (1 - 2 * T), rel=1e-9)


@pytest.mark.parametrize("cls", [sg.ARM, sg.DisARM])
def test_surrogate_matches_estimate_grad_at_same_seed(cls):
    logits = torch.tensor([0.2, -0.6, 1.0], dtype=torch.float64, requires_grad=True)
    est = sg.estimate_grad(
        _nonlinear,
        lambda logits: D.Bernoulli(logits=logits),
        {"logits": logits},
        n=500,
        estimator=cls(),
        seed=5,
    )
    loss = sg.expectation(_nonlinear, D.Bernoulli(logits=logits), n=500, estimator=cls(), seed=5)
    (g,) = torch.autograd.grad(loss, logits)
    torch.testing.assert_close(g, est.grad["logits"])
    torch.testing.assert_close(loss.detach(), est.value)


@pytest.mark.parametrize("cls", [sg.ARM, sg.DisARM])
def test_surrogate_with_items_and_decoder_parameter(cls):
    # batch (B, D) = (4, 3): one row of latents per data point, f returns (n, B); a "decoder"
    # weight w that f uses directly gets its pathwise gradient through f's own graph.
    torch.manual_seed(0)
    logits = (0.5 * torch.randn(4, 3, dtype=torch.float64)).requires_grad_()
    w = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)

    def f(b):  # (n, 4, 3) -> (n, 4)
        return w * _nonlinear(b.reshape(-1, 3)).reshape(b.shape[0], 4)

    reps = []
    for seed in range(300):
        loss = sg.expectation(
            f, D.Bernoulli(logits=logits), n=20, estimator=cls(), item_shape=(4,), seed=seed
        )
        gl, gw = torch.autograd.grad(loss, [logits, w])
        reps.append(torch.cat([gl.flatten(), gw.reshape(1)]))
    reps = torch.stack(reps)
    exact_l = torch.stack([_exact_nonlinear(logits[i]) for i in range(4)])
    gl, gw = torch.autograd.grad((w * exact_l).sum(), [logits, w])
    z = mean_z(reps, torch.cat([gl.flatten(), gw.reshape(1)]))
    assert z.abs().max() < Z_CRIT, z


def test_not_applicable_on_normal_names_alternatives():
    mu = torch.tensor(0.0, requires_grad=True)
    with pytest.raises(sg.EstimatorNotApplicable, match="Bernoulli") as e:
        sg.estimate_grad(
            lambda x: x, lambda mu: D.Normal(mu, 1.0), {"mu": mu}, n=10, estimator=sg.ARM()
        )
    assert "Pathwise" in str(e.value) and "ScoreFunction" in str(e.value)
    with pytest.raises(sg.EstimatorNotApplicable):
        sg.expectation(lambda x: x, D.Normal(mu, 1.0), n=10, estimator=sg.DisARM())


@pytest.mark.parametrize("cls", [sg.ARM, sg.DisARM])
def test_categorical_by_stick_breaking_with_items(cls):
    # 3 data points (items), each with 2 independent 4-way categoricals; f per item
    torch.manual_seed(1)
    logits = torch.randn(3, 2, 4, dtype=torch.float64).requires_grad_()
    table = torch.tensor([[1.0, -2.0, 0.5, 3.0], [0.3, 0.0, -1.0, 2.0]], dtype=torch.float64)

    def f(x):  # (n, 3, 2) indices -> (n, 3)
        c0 = table[0][x[..., 0]]
        c1 = table[1][x[..., 1]]
        return c0 * c1 + c0

    reps = []
    for seed in range(300):
        loss = sg.expectation(
            f, D.Categorical(logits=logits), n=10, estimator=cls(), item_shape=(3,), seed=seed
        )
        (g,) = torch.autograd.grad(loss, logits)
        reps.append(g.flatten())
    p = torch.softmax(logits, -1)
    e0, e1 = p[:, 0] @ table[0], p[:, 1] @ table[1]
    (g,) = torch.autograd.grad((e0 * e1 + e0).sum(), logits)
    assert mean_z(torch.stack(reps), g.flatten()).abs().max() < Z_CRIT
