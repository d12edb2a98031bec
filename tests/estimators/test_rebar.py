"""REBAR and RELAX: unbiased whatever the control's parameters (z-tests against exact gradients,
before and after training the control), variance reduction by training, both doors, state.

False-alarm rate: each z-test uses |z| < 4.42 (1e-5 per component, fixed seeds).
"""

import copy
import itertools

import pytest
import torch
import torch.distributions as D

import scoregrad as sg
from scoregrad.estimators.rebar import conditional_logistic
from scoregrad.problems import bernoulli_toy
from scoregrad.testing import Z_CRIT, assert_grad_unbiased, mean_z

W = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)


def nonlinear(b):
    return (b * W.to(b)).sum(-1) ** 2 + b.prod(-1) * 3.0


def exact_nonlinear(logits):
    p = torch.sigmoid(logits)
    total = 0.0
    for bits in itertools.product([0.0, 1.0], repeat=3):
        b = torch.tensor(bits, dtype=logits.dtype)
        total = total + torch.prod(torch.where(b > 0, p, 1 - p)) * nonlinear(b.unsqueeze(0))[0]
    return total


def _estimators():
    return {
        "rebar": lambda: sg.REBAR(),
        "relax": lambda: sg.RELAX(),
        "relax+f": lambda: sg.RELAX(relaxed_f=True),
    }


def test_conditional_logistic_matches_the_posterior_of_z():
    # z̃ given b must have the law of z = θ + logit(u) conditioned on H(z) = b: compare CDFs
    torch.manual_seed(0)
    theta = torch.tensor(0.7, dtype=torch.float64)
    n = 200_000
    z = theta + torch.logit(torch.rand(n, dtype=torch.float64))
    b = (z > 0).double()
    zt = conditional_logistic(theta.expand(n), b, torch.rand(n, dtype=torch.float64))
    assert torch.equal(zt > 0, z > 0)
    for q in (0.5, 1.5, -0.5, -2.0):  # P(z̃ ≤ q) = P(z ≤ q): two binomial proportions
        p1, p2 = (zt <= q).double().mean(), (z <= q).double().mean()
        se = ((p1 * (1 - p1) + p2 * (1 - p2)) / n).sqrt()
        assert abs(float(p1 - p2)) < Z_CRIT * float(se)


@pytest.mark.parametrize("name", list(_estimators()))
def test_unbiased_on_bernoulli_toy(name):
    prob = bernoulli_toy(logits=(0.0, 0.8, -1.5))
    params = prob.params()
    est = sg.estimate_grad(
        prob.f, prob.dist_fn, params, n=20_000, estimator=_estimators()[name](), seed=11
    )
    assert_grad_unbiased(est, prob.exact(params)[1])


@pytest.mark.parametrize("name", list(_estimators()))
def test_unbiased_after_training_the_control(name):
    # train φ on the problem (this moves η, λ and the network far from their start), then z-test
    theta = torch.tensor([0.3, -0.8, 1.1], dtype=torch.float64, requires_grad=True)
    est_obj = _estimators()[name]()

    def dist_fn(theta):
        return D.Bernoulli(probs=torch.sigmoid(theta))

    for step in range(150):
        sg.estimate_grad(nonlinear, dist_fn, {"theta": theta}, n=64, estimator=est_obj, seed=step)
    est_obj.train = False
    est = sg.estimate_grad(
        nonlinear, dist_fn, {"theta": theta}, n=20_000, estimator=est_obj, seed=12
    )
    (g,) = torch.autograd.grad(exact_nonlinear(theta), theta)
    assert_grad_unbiased(est, {"theta": g})


def test_default_control_declares_its_input_gradient():
    # value_and_input_grad must be the network's own value and its autograd input gradient
    torch.manual_seed(0)
    net = sg.RELAX(hidden=8).control
    z = torch.randn(6, 4, 3, dtype=torch.float64, requires_grad=True)
    net.to(dtype=torch.float64)
    with torch.no_grad():  # the zero-initialised last layer would make ∂r/∂z trivially 0
        net.net[-1].weight.normal_()
    r, dr = net.value_and_input_grad(z.detach(), 1)
    ref = net(z, 1)
    (ref_dr,) = torch.autograd.grad(ref.sum(), z)
    assert r.shape == (6, 4) and torch.allclose(r, ref) and torch.allclose(dr, ref_dr)


class _PlainControl(torch.nn.Module):
    """A user's control without value_and_input_grad: the estimator differentiates it twice."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, z, item_dims):
        return self.net(z.reshape(*z.shape[: 1 + item_dims], -1)).squeeze(-1)


def test_explicit_and_autograd_control_paths_agree():
    # the same network trained through both paths gives the same estimates (up to rounding:
    # 1 - h² near saturation against autograd's sigmoid derivative)
    theta = torch.tensor([0.3, -0.8, 1.1], dtype=torch.float64, requires_grad=True)
    explicit = sg.RELAX(hidden=8, train=False)  # the first call builds the lazy layer
    sg.estimate_grad(nonlinear, D.Bernoulli, {"logits": theta}, n=8, estimator=explicit, seed=0)
    explicit.train = True
    with torch.no_grad():
        explicit.control.net[-1].weight.normal_(generator=torch.Generator().manual_seed(1))
    plain = sg.RELAX(_PlainControl(copy.deepcopy(explicit.control.net)))
    for seed in range(1, 6):
        a, b = (
            sg.estimate_grad(nonlinear, D.Bernoulli, {"logits": theta}, n=16, estimator=e,
                             seed=seed).grad["logits"]
            for e in (explicit, plain)
        )  # fmt: skip
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-9), (a, b)  # 1 - tanh² vs autograd


class _TransposedGrad(torch.autograd.Function):
    """The identity, whose backward hands its gradient back in the transposed memory layout."""

    @staticmethod
    def forward(ctx, p):
        return p.clone()

    @staticmethod
    def backward(ctx, g):
        return g.t().contiguous().t()


def test_control_step_with_a_gradient_in_another_layout():
    # torch's fused CPU Adam reads a gradient's memory in its parameter's layout: control_step
    # hands it one that matches, so the step is the per-tensor Adam's
    est = sg.RELAX()
    w = torch.arange(6.0).reshape(3, 2) - 2.5  # signs alternate along rows, so a misread shows
    q = torch.nn.Parameter(torch.zeros(3, 2))
    est.control_step((_TransposedGrad.apply(q) - w).reshape(1, -1), [q])
    plain = torch.nn.Parameter(torch.zeros(3, 2))
    plain.grad = -2.0 * w  # d/dq Σ (q - w)² at q = 0
    torch.optim.Adam([plain], lr=est.lr, foreach=False).step()
    assert torch.allclose(q.detach(), plain.detach())


def test_training_lowers_variance():
    prob = bernoulli_toy(logits=(0.0,))
    params = prob.params()
    relax = sg.RELAX(relaxed_f=True, train=False)
    before = sg.estimate_grad(prob.f, prob.dist_fn, params, n=20_000, estimator=relax, seed=0)
    relax.train = True
    for step in range(300):
        sg.estimate_grad(prob.f, prob.dist_fn, params, n=32, estimator=relax, seed=100 + step)
    relax.train = False
    after = sg.estimate_grad(prob.f, prob.dist_fn, params, n=20_000, estimator=relax, seed=1)
    v0, v1 = before.variance_per_sample["logits"], after.variance_per_sample["logits"]
    assert float(v1) < 0.5 * float(v0), (v0, v1)


def test_surrogate_with_items_unbiased():
    torch.manual_seed(0)
    logits = (0.5 * torch.randn(2, 3, dtype=torch.float64)).requires_grad_()

    def f(b):  # (n, 2, 3) -> (n, 2)
        return nonlinear(b.reshape(-1, 3)).reshape(b.shape[0], 2)

    relax = sg.RELAX(relaxed_f=True)
    reps = []
    for seed in range(200):
        loss = sg.expectation(
            f, D.Bernoulli(logits=logits), n=16, estimator=relax, item_shape=(2,), seed=seed
        )
        (g,) = torch.autograd.grad(loss, logits)
        reps.append(g.flatten())
    exact = exact_nonlinear(logits[0]) + exact_nonlinear(logits[1])
    (g,) = torch.autograd.grad(exact, logits)
    # the control is trained along the way; each replicate is unbiased given the φ it used
    assert mean_z(torch.stack(reps), g.flatten()).abs().max() < Z_CRIT


def test_state_dict_roundtrip_reproduces_estimates():
    prob = bernoulli_toy(logits=(0.2, -0.4))
    params = prob.params()
    a = sg.RELAX(relaxed_f=True)
    for s in range(5):
        sg.estimate_grad(prob.f, prob.dist_fn, params, n=16, estimator=a, seed=s)
    b = sg.RELAX(relaxed_f=True)
    sg.estimate_grad(prob.f, prob.dist_fn, params, n=4, estimator=b, seed=0)  # build lazy net
    b.load_state_dict(a.state_dict())
    ea = sg.estimate_grad(prob.f, prob.dist_fn, params, n=64, estimator=a, seed=9)
    eb = sg.estimate_grad(prob.f, prob.dist_fn, params, n=64, estimator=b, seed=9)
    torch.testing.assert_close(ea.grad["logits"], eb.grad["logits"])


def test_rebar_needs_differentiable_f():
    theta = torch.zeros(2, requires_grad=True)
    with pytest.raises(sg.EstimatorNotApplicable, match="RELAX"):
        sg.estimate_grad(
            lambda b: (b.sum(-1) > 0.5).float(),
            lambda theta: D.Bernoulli(logits=theta),
            {"theta": theta},
            n=8,
            estimator=sg.REBAR(),
        )
    # RELAX without the relaxed f is fine with a black box
    est = sg.estimate_grad(
        lambda b: (b.sum(-1) > 0.5).float(),
        lambda theta: D.Bernoulli(logits=theta),
        {"theta": theta},
        n=8,
        estimator=sg.RELAX(),
    )
    assert est.n_evals == 8


def test_rebar_on_normal_not_applicable():
    mu = torch.tensor(0.0, requires_grad=True)
    with pytest.raises(sg.EstimatorNotApplicable, match="Pathwise"):
        sg.estimate_grad(
            lambda x: x, lambda mu: D.Normal(mu, 1.0), {"mu": mu}, n=8, estimator=sg.RELAX()
        )


def test_bernoulli_pullback_is_autograds():
    # the written-out vector-Jacobian product of z and z̃ in the logits against autograd's
    from scoregrad.estimators.rebar import BernoulliRelaxation as fam

    gen = torch.Generator().manual_seed(0)
    L = torch.randn(50, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    u, v = (torch.rand(50, 3, dtype=torch.float64, generator=gen) for _ in range(2))
    b = fam.hard(L.detach(), u)
    g_z, g_zt = (torch.randn(50, 3, dtype=torch.float64, generator=gen) for _ in range(2))
    (ref,) = torch.autograd.grad([fam.z(L, u), fam.z_tilde(L, b, v)], L, [g_z, g_zt])
    assert torch.allclose(fam.pullback(L.detach(), b, v, g_z, g_zt), ref, rtol=1e-12)


@pytest.mark.parametrize("name", list(_estimators()))
def test_trained_in_float64_then_called_in_float32(name):
    """η, log λ and the network keep the dtype they were trained in (the optimiser's moments are
    in it) and are cast where used: a float32 call after float64 training runs, trains, returns
    float32 gradients, and stays unbiased (|z| < 4.42)."""
    prob = bernoulli_toy(logits=(0.0, 0.8, -1.5))
    est_obj = _estimators()[name]()
    for step in range(5):
        sg.estimate_grad(prob.f, prob.dist_fn, prob.params(torch.float64), n=64,
                         estimator=est_obj, seed=step)  # fmt: skip
    params = prob.params(torch.float32)
    est = sg.estimate_grad(prob.f, prob.dist_fn, params, n=20_000, estimator=est_obj, seed=13)
    assert all(g.dtype == torch.float32 for g in est.grad.values())
    assert_grad_unbiased(est, prob.exact(params)[1])


def test_relax_network_refuses_a_problem_of_another_width():
    """The default network is built for the first problem's latent width: another problem's
    latents get a StateError naming the fix, not a matrix-product failure inside the network."""
    relax = sg.RELAX()
    toy = bernoulli_toy()
    sg.estimate_grad(toy.f, toy.dist_fn, toy.params(), n=16, estimator=relax, seed=0)
    table = sg.problems.get("categorical_table")
    with pytest.raises(sg.errors.StateError, match="width 1 per item.*a new RELAX"):
        sg.estimate_grad(table.f, table.dist_fn, table.params(), n=16, estimator=relax, seed=0)
