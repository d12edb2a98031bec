"""VIMCO against exact gradients of the K-sample objective (by enumeration), and RLOO.

False-alarm rate: each z-test uses |z| < 4.42 (1e-5 per component, fixed seeds).
"""

import itertools
import math

import pytest
import torch
import torch.distributions as D

import scoregrad as sg
from scoregrad.estimators.multisample import vimco_signals
from scoregrad.testing import Z_CRIT, assert_grad_unbiased, mean_z

TABLE = torch.tensor([[0.3, -1.2], [2.0, 0.5]], dtype=torch.float64)  # log-weight of (b0, b1)


def log_w(b):
    b = b.long()
    return TABLE[b[..., 0], b[..., 1]]


def exact_objective(logits, K, table=TABLE):
    """E[log (1/K) Σ_k exp l(b_k)] over all 4^K configurations of K two-bit samples."""
    p = torch.sigmoid(logits)
    probs = torch.stack(
        [(1 - p[0]) * (1 - p[1]), (1 - p[0]) * p[1], p[0] * (1 - p[1]), p[0] * p[1]]
    )
    lw = table.flatten()
    total = 0.0
    for cfg in itertools.product(range(4), repeat=K):
        idx = torch.tensor(cfg)
        total = total + probs[idx].prod() * (torch.logsumexp(lw[idx], 0) - math.log(K))
    return total


def test_signals_match_definition():
    lw = torch.tensor([0.1, -2.0, 1.5, 0.7], dtype=torch.float64)
    L, s = vimco_signals(lw)
    for k in range(4):
        others = torch.cat([lw[:k], lw[k + 1 :]])
        repl = torch.cat([lw[:k], others.mean().reshape(1), lw[k + 1 :]])
        L_minus = torch.logsumexp(repl, 0) - math.log(4)
        assert float(s[k]) == pytest.approx(float(L - L_minus), rel=1e-12)


@pytest.mark.parametrize("K", [2, 5, 64])
def test_signals_match_definition_with_items_and_a_dominant_weight(K):
    """O(K) prefix/suffix sums against the definition, per item, where one log-weight dominates
    the rest by 700 (the others vanish beside it in e^{l}; the signal must still see them)."""
    g = torch.Generator().manual_seed(K)
    lw = torch.randn(K, 3, generator=g, dtype=torch.float64) * 3.0
    lw[1, 0] = 700.0
    L, s = vimco_signals(lw)
    for k in range(K):
        others = torch.cat([lw[:k], lw[k + 1 :]])
        repl = torch.cat([lw[:k], others.mean(0, keepdim=True), lw[k + 1 :]])
        L_minus = torch.logsumexp(repl, 0) - math.log(K)
        torch.testing.assert_close(s[k], L - L_minus, rtol=1e-12, atol=1e-12)


def test_vimco_unbiased_for_k_sample_objective():
    logits = torch.tensor([0.4, -0.7], dtype=torch.float64, requires_grad=True)
    K = 3
    est = sg.estimate_grad(
        log_w,
        lambda logits: D.Bernoulli(logits=logits),
        {"logits": logits},
        n=K * 20_000,
        estimator=sg.VIMCO(K),
        seed=0,
    )
    exact = exact_objective(logits, K)
    (g,) = torch.autograd.grad(exact, logits)
    assert_grad_unbiased(est, {"logits": g})
    assert abs(float(est.value - exact.detach())) < Z_CRIT * float(est.value_stderr)
    assert est.n_units == 20_000 and est.n_evals == K * 20_000


def test_vimco_surrogate_with_items_and_pathwise_part():
    # two data points (items), each with its own 2-bit latent and K = 3 samples; the log-weights
    # depend on a "decoder" scale a that gets its gradient through f's graph.
    logits = torch.tensor([[0.4, -0.7], [-0.2, 0.9]], dtype=torch.float64, requires_grad=True)
    a = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    K = 3

    def f(b):  # (K, 2, 2) -> (K, 2)
        return a * log_w(b)

    reps = []
    for seed in range(400):
        loss = sg.expectation(
            f, D.Bernoulli(logits=logits), n=K, estimator=sg.VIMCO(), item_shape=(2,), seed=seed
        )
        gl, ga = torch.autograd.grad(loss, [logits, a])
        reps.append(torch.cat([gl.flatten(), ga.reshape(1)]))
    exact = exact_objective(logits[0], K, a * TABLE) + exact_objective(logits[1], K, a * TABLE)
    gl, ga = torch.autograd.grad(exact, [logits, a])
    z = mean_z(torch.stack(reps), torch.cat([gl.flatten(), ga.reshape(1)]))
    assert z.abs().max() < Z_CRIT, z


def test_vimco_sample_size_errors():
    with pytest.raises(sg.SampleSizeError, match="multiple of K"):
        sg.VIMCO(4).check(10)
    with pytest.raises(sg.SampleSizeError):
        sg.VIMCO(1)
    mu = torch.tensor(0.0, requires_grad=True)
    with pytest.raises(sg.SampleSizeError):
        sg.expectation(lambda x: x, D.Normal(mu, 1.0), n=1, estimator=sg.VIMCO())


def test_rloo_unbiased():
    prob = sg.problems.get("normal_square")
    params = prob.params()
    est = sg.estimate_grad(prob.f, prob.dist_fn, params, n=20_000, estimator=sg.RLOO(), seed=1)
    assert_grad_unbiased(est, prob.exact(params)[1])


def test_vimco_groups_survive_chunking():
    # chunk_size 7 is not a multiple of K = 3: chunks must still hold whole groups
    mu = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    a = sg.estimate_grad(
        lambda x: x,
        lambda mu: D.Normal(mu, 1.0),
        {"mu": mu},
        n=300,
        estimator=sg.VIMCO(3),
        seed=0,
        chunk_size=7,
    )
    assert a.n_units == 100
