"""SampleModel: closed-form scores equal autograd's on log_prob, family by family."""

import pytest
import torch
import torch.distributions as D

import scoregrad as sg
from scoregrad.core.model import SampleModel
from scoregrad.core.seeding import seeded
from scoregrad.testing import assert_grad_unbiased

CASES = {
    "normal": (lambda mu, ls: D.Normal(mu, ls.exp()), {"mu": (3,), "ls": (3,)}),
    "normal-fixed-scale": (lambda mu: D.Normal(mu, 1.0), {"mu": (2, 3)}),
    # mu is the distribution's loc itself (its score taken as it is) and also reaches its scale
    "normal-shared": (lambda mu: D.Normal(mu, (0.5 * mu).exp()), {"mu": (3,)}),
    "bernoulli-logits": (lambda th: D.Bernoulli(logits=th), {"th": (4,)}),
    "bernoulli-probs": (lambda th: D.Bernoulli(probs=torch.sigmoid(th)), {"th": (4,)}),
    "categorical-logits": (lambda th: D.Categorical(logits=th), {"th": (5,)}),
    "categorical-probs": (lambda th: D.Categorical(probs=torch.softmax(th, -1)), {"th": (2, 5)}),
    "poisson": (lambda lr: D.Poisson(lr.exp()), {"lr": (3,)}),
    "exponential": (lambda lr: D.Exponential(lr.exp()), {"lr": ()}),
    "gamma": (lambda la, lb: D.Gamma(la.exp(), lb.exp()), {"la": (2,), "lb": (2,)}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_closed_form_scores_match_autograd(name):
    fn, shapes = CASES[name]
    g = torch.Generator().manual_seed(0)
    params = {
        k: (0.5 * torch.randn(s, generator=g, dtype=torch.float64)).requires_grad_()
        for k, s in shapes.items()
    }
    model = SampleModel.expand(fn, params, 9)
    assert model.expanded
    x = model.sample()
    fast = model.score(x)  # closed form, backward through dist_fn only
    slow = SampleModel.expand(fn, params, 9).score(x, create_graph=True)  # autograd on log_prob
    for k in params:
        assert fast[k].shape == (9, *shapes[k])
        assert torch.allclose(fast[k], slow[k].detach(), atol=1e-12), k


def test_no_process_wide_validation_switch():
    """Threads estimating gradients never turn torch's argument validation off for another thread:
    Normal(0, -1) built meanwhile is always refused, and the default is unchanged afterwards."""
    import threading

    import scoregrad as sg

    default = D.Distribution._validate_args
    stop = threading.Event()
    failures: list[BaseException] = []

    def estimate():
        mu = torch.zeros(2, requires_grad=True)
        prepared = sg.prepare(lambda x: x.sum(-1), lambda mu: D.Normal(mu, 1.0), {"mu": mu}, n=16)
        try:
            while not stop.is_set():
                sg.estimate_grad(lambda x: x.sum(-1), lambda mu: D.Normal(mu, 1.0), {"mu": mu}, 16)
                prepared({"mu": mu})
                sg.expectation(lambda x: x.sum(-1), D.Normal(mu, 1.0), 16).backward()
        except BaseException as e:  # noqa: BLE001  reported below
            failures.append(e)

    workers = [threading.Thread(target=estimate) for _ in range(4)]
    for w in workers:
        w.start()
    accepted = 0
    try:
        for _ in range(2000):
            try:
                D.Normal(0.0, -1.0)
                accepted += 1
            except ValueError:
                pass
    finally:
        stop.set()
        for w in workers:
            w.join()
    assert not failures, failures
    assert accepted == 0
    assert D.Distribution._validate_args is default


@pytest.mark.parametrize("expanded", [True, False])
def test_registered_sampler_draws_the_same_bits_as_torch(expanded):
    """The Normal sampler (randn · scale + loc) is torch.normal's own arithmetic: same bits."""
    g = torch.Generator().manual_seed(1)
    loc, scale = torch.randn(3, generator=g), torch.rand(3, generator=g) + 0.5
    params = {"loc": loc, "scale": scale}
    model = SampleModel.expand(lambda **p: D.Normal(**p), params, 17, expandable=expanded)
    assert model.validated
    with seeded(5):  # the library's own seeding: the caller's RNG state comes back
        ours = model.sample()
    with seeded(5):
        theirs = D.Normal(loc, scale).sample((17,))
    assert torch.equal(ours, theirs)


# --- probabilities at 0 or 1 -----------------------------------------------------------------

_BLIND = [sg.ScoreFunction(), sg.ScoreFunction(sg.baselines.LeaveOneOut()), sg.DisARM(),
          sg.ARM(), sg.ARSM(), sg.UnorderedSet(k=2), sg.RaoBlackwellReinforce(k=1)]  # fmt: skip


def _masked(theta):
    """Categorical(softmax(θ) restricted to categories 1 and 2): category 0 has probability 0
    whatever θ (an invalid-action mask)."""
    w = theta.softmax(-1) * torch.tensor([0.0, 1.0, 1.0], dtype=theta.dtype)
    return D.Categorical(probs=w / w.sum())


@pytest.mark.parametrize("est", _BLIND, ids=repr)
def test_a_probability_at_zero_that_moves_is_refused(est):
    """p = (0, 0.3, 0.7) given as probabilities: ∂E[f]/∂p₀ = f(0) - E[f] needs f at a category
    that is never drawn, so every estimator that goes through scores or logits (which torch clamps
    there) would silently report 0 or a wrong value; each refuses, naming measure_valued."""
    p = torch.tensor([0.0, 0.3, 0.7], dtype=torch.float64, requires_grad=True)
    with pytest.raises(sg.EstimatorNotApplicable, match="exactly 0 or 1 moves.*measure_valued"):
        sg.estimate_grad(lambda x: x.double() + 1.0, lambda p: D.Categorical(probs=p), {"p": p},
                         n=400, estimator=est, seed=0)  # fmt: skip


@pytest.mark.parametrize("est", _BLIND + [sg.MeasureValued()], ids=repr)
def test_a_masked_category_is_estimated_unbiasedly(est):
    """A fixed zero (the mask) moves with no parameter: every estimator runs (the score function's
    closed-form score had 0/0 there and was refused as non-finite) and is unbiased, |z| < 4.42."""
    theta = torch.tensor([0.2, -0.4, 0.6], dtype=torch.float64, requires_grad=True)
    f = lambda x: x.double() ** 2  # noqa: E731
    est_ = sg.estimate_grad(f, _masked, {"theta": theta}, n=20_000, estimator=est, seed=1)
    (exact,) = torch.autograd.grad((_masked(theta).probs * torch.arange(3.0) ** 2).sum(), theta)
    assert_grad_unbiased(est_, {"theta": exact})


def test_a_saturated_bernoulli_probability_is_not_refused():
    """σ(40) rounds to 1 in float64; its derivative σ(1 - σ) is 0, so nothing moves: the score
    function runs (its closed-form score had 0/0 at p = 1) and is unbiased."""
    t = torch.tensor([40.0, 0.3], dtype=torch.float64, requires_grad=True)
    est = sg.estimate_grad(lambda b: b.sum(-1), lambda t: D.Bernoulli(probs=torch.sigmoid(t)),
                           {"t": t}, n=20_000, seed=2)  # fmt: skip
    s = torch.sigmoid(t.detach())
    assert_grad_unbiased(est, {"t": s * (1 - s)})


@pytest.mark.parametrize("est", [sg.ScoreFunction(), sg.DisARM(), sg.UnorderedSet(k=2)], ids=repr)
def test_the_expectation_door_judges_a_moving_boundary_through_the_callers_graph(est):
    """In ``expectation`` the distribution is the caller's: a zero probability that is a leaf of
    their graph is refused (through scores or logits the door returned a wrong gradient, e.g. 0
    or -2.7 for -1.7); a masked one, fixed in their graph, runs and is unbiased (|z| < 4.42 over
    40 calls)."""
    p = torch.tensor([0.0, 0.3, 0.7], dtype=torch.float64, requires_grad=True)
    f = lambda x: x.double() + 1.0  # noqa: E731
    with pytest.raises(sg.EstimatorNotApplicable, match="exactly 0 or 1 moves"):
        sg.expectation(f, D.Categorical(probs=p), n=64, estimator=est, seed=0)
    theta = torch.tensor([0.2, -0.4, 0.6], dtype=torch.float64, requires_grad=True)
    grads = torch.stack([
        torch.autograd.grad(sg.expectation(f, _masked(theta), n=500, estimator=est, seed=s),
                            theta)[0]
        for s in range(40)
    ])  # fmt: skip
    (exact,) = torch.autograd.grad((_masked(theta).probs * (torch.arange(3.0) + 1)).sum(), theta)
    se = grads.std(0) / 40**0.5
    assert bool(((grads.mean(0) - exact).abs() <= 4.42 * se + 1e-12).all()), (grads.mean(0), exact)
