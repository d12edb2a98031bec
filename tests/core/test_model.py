"""SampleModel: closed-form scores equal autograd's on log_prob, family by family."""

import pytest
import torch
import torch.distributions as D

from scoregrad.core.model import SampleModel
from scoregrad.core.seeding import seeded

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
