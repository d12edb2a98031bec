"""Baselines: definitions, state, and that each keeps the estimator unbiased."""

import torch

import scoregrad as sg
from scoregrad import baselines as B
from scoregrad import problems as P
from scoregrad.testing import assert_grad_unbiased


def test_leave_one_out_definition_and_trailing_shape():
    f = torch.tensor([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    b = B.LeaveOneOut()(f)
    assert torch.allclose(b, torch.tensor([[2.5, 25.0], [2.0, 20.0], [1.5, 15.0]]))


def test_moving_average_bias_correction_and_state_round_trip():
    ma = B.MovingAverage(decay=0.9)
    ma.update(torch.tensor([2.0, 4.0]))
    # after one update the raw EMA is 0.3, bias-corrected 3.0 (the first batch mean)
    assert torch.allclose(ma(torch.zeros(1)), torch.tensor([3.0]))
    ma.update(torch.tensor([5.0]))
    expected = (0.9 * 0.3 + 0.1 * 5.0) / (1 - 0.9**2)
    assert torch.allclose(ma(torch.zeros(1)), torch.tensor([expected]))
    clone = B.MovingAverage()
    clone.load_state_dict(ma.state_dict())
    assert torch.allclose(clone(torch.zeros(3)), ma(torch.zeros(3)))


def test_moving_average_state_persists_across_calls_of_estimate_grad():
    problem = P.get("normal_square")
    est = sg.ScoreFunction(B.MovingAverage(0.5))
    for seed in range(3):
        sg.estimate_grad(
            problem.f, problem.dist_fn, problem.params(), n=4096, estimator=est, seed=seed
        )
    assert est.baseline.steps == 3
    assert abs(float(est.baseline.current()) - 5.0) < 0.3  # E[f] = 5


def test_learned_baseline_with_context_learns_f_and_stays_unbiased():
    """NVIL-style: b(context) regresses f on a per-sample context. Here the context is an
    independent copy of the noise, so b cannot see the sample and the estimator is unbiased."""
    torch.manual_seed(0)
    mu = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    n = 2**14
    ctx = torch.randn(n, 1, dtype=torch.float64)
    est = sg.ScoreFunction(B.Learned(lr=0.05, steps_per_update=20))
    res = sg.estimate_grad(
        lambda x: (x - 2.0) ** 2,
        lambda mu: torch.distributions.Normal(mu, 1.0),
        {"mu": mu},
        n=n,
        estimator=est,
        seed=1,
        context=ctx,
        chunk_size=1024,
    )
    assert_grad_unbiased(res, {"mu": torch.tensor(2 * (0.5 - 2.0))}, what="learned+context")
    assert est.baseline.model is not None
    state = est.baseline.state_dict()
    assert state["model"] is not None


def test_constant_and_no_baseline():
    f = torch.tensor([1.0, 2.0])
    assert torch.equal(B.NoBaseline()(f), torch.zeros(2))
    assert torch.equal(B.Constant(1.5)(f), torch.full((2,), 1.5))
