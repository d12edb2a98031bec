"""Family: per-sample scores by its declared chain rule equal autograd's; it falls back where the
chain rule is not elementwise or the family stores its arguments transformed."""

import pytest
import torch
import torch.distributions as D

import scoregrad as sg
from scoregrad.core.model import SampleModel
from scoregrad.errors import ParameterError
from scoregrad.testing import assert_grad_unbiased

# (family, unconstrained, parameter shapes, the same distribution written as a lambda)
CASES = {
    "normal": (D.Normal, False, {"loc": (3,), "scale": (3,)}, None),
    "normal-unconstrained": (D.Normal, True, {"loc": (3,), "scale": ()}, None),
    "bernoulli-logits": (D.Bernoulli, False, {"logits": (4,)}, None),
    "bernoulli-probs-unconstrained": (D.Bernoulli, True, {"probs": (2, 3)}, None),
    "poisson-unconstrained": (D.Poisson, True, {"rate": (3,)}, None),
    "exponential-unconstrained": (D.Exponential, True, {"rate": ()}, None),
    "gamma-unconstrained": (D.Gamma, True, {"concentration": (2,), "rate": (2,)}, None),
}


def _values(shapes, unconstrained, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, s in shapes.items():
        v = 0.5 * torch.randn(s, generator=g, dtype=torch.float64)
        if not unconstrained and k in ("scale", "rate", "concentration"):
            v = v.exp()
        out[k] = v.requires_grad_()
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_declared_chain_rule_equals_autograd(name):
    family, unconstrained, shapes, _ = CASES[name]
    fam = sg.Family(family, unconstrained=unconstrained)
    params = _values(shapes, unconstrained)
    assert fam.declares_chain_rule(params)
    model = SampleModel.expand(fam, params, 11)
    assert not model.expanded  # no expanded model: the scores come from the chain rule
    x = model.sample()
    fast = model.score(x)

    def log_p(p):
        return fam(**p).log_prob(x)

    for k, p in params.items():
        # autograd, sample by sample, on the same distribution
        slow = torch.stack([
            torch.autograd.grad(log_p(params)[i].sum(), p, retain_graph=True)[0] for i in range(11)
        ])  # fmt: skip
        assert fast[k].shape == (11, *p.shape)
        assert torch.allclose(fast[k], slow, atol=1e-6, rtol=1e-6), (name, k)


def test_estimates_equal_the_lambda_form():
    mu = torch.randn(3, requires_grad=True)
    ls = (0.3 * torch.randn(3)).requires_grad_()

    def f(x):
        return ((x - 1.0) ** 2).sum(-1)

    for est in (
        sg.ScoreFunction(),
        sg.ScoreFunction(sg.baselines.LeaveOneOut()),
        sg.MeasureValued(),
    ):
        a = sg.estimate_grad(f, lambda mu, ls: D.Normal(mu, ls.exp()), {"mu": mu, "ls": ls}, 40,
                             est, seed=1)  # fmt: skip
        b = sg.estimate_grad(f, sg.Family(D.Normal, unconstrained=True), {"loc": mu, "scale": ls},
                             40, est, seed=1)  # fmt: skip
        assert torch.allclose(a.grad["mu"], b.grad["loc"], atol=1e-6)
        assert torch.allclose(a.grad["ls"], b.grad["scale"], atol=1e-6)
        assert torch.allclose(a.stderr["ls"], b.stderr["scale"], atol=1e-6)
    th = torch.randn(3, requires_grad=True)
    for est in (sg.ARM(), sg.DisARM(), sg.RLOO()):
        a = sg.estimate_grad(lambda b: b.sum(-1), lambda th: D.Bernoulli(logits=th), {"th": th}, 8,
                             est, seed=2)  # fmt: skip
        b = sg.estimate_grad(lambda b: b.sum(-1), sg.Family(D.Bernoulli), {"logits": th}, 8, est,
                             seed=2)  # fmt: skip
        assert torch.allclose(a.grad["th"], b.grad["logits"], atol=1e-6)


def test_categorical_normalises_its_logits_so_autograd_runs():
    """Categorical stores logits - logsumexp(logits): no declared chain rule, and still right."""
    fam = sg.Family(D.Categorical)
    th = torch.tensor([0.3, -0.2, 1.0, 0.0], requires_grad=True)
    assert not fam.declares_chain_rule({"logits": th})
    est = sg.estimate_grad(lambda x: (x == 2).double(), fam, {"logits": th}, 100_000, seed=0)
    p = torch.softmax(th.detach(), -1)
    assert_grad_unbiased(est, {"logits": p[2] * ((torch.arange(4) == 2).float() - p)})
    assert not sg.Family(D.Categorical, unconstrained=True).declares_chain_rule(
        {"probs": th}
    )  # a softmax is not elementwise


def test_family_refuses_what_is_not_a_family():
    with pytest.raises(ParameterError, match="torch.distributions class"):
        sg.Family(lambda mu: D.Normal(mu, 1.0))
