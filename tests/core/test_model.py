"""SampleModel: closed-form scores equal autograd's on log_prob, family by family."""

import pytest
import torch
import torch.distributions as D

from scoregrad.core.model import SampleModel

CASES = {
    "normal": (lambda mu, ls: D.Normal(mu, ls.exp()), {"mu": (3,), "ls": (3,)}),
    "normal-fixed-scale": (lambda mu: D.Normal(mu, 1.0), {"mu": (2, 3)}),
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
