"""Control variates: the delta method's exactness, user CVs, fixed coefficients."""

import torch
import torch.distributions as D

import scoregrad as sg
from scoregrad import control_variates as CV
from scoregrad.testing import assert_grad_unbiased


def test_delta_method_is_exact_for_a_quadratic_in_several_dimensions():
    problem = sg.problems.get("mvn_quadratic", dim=3)
    _, exact = problem.exact()
    est = sg.estimate_grad(
        problem.f,
        problem.dist_fn,
        problem.params(),
        n=64,
        seed=0,
        estimator=sg.ScoreFunction(control_variate=CV.DeltaMethod()),
    )
    for k in exact:
        assert torch.allclose(est.grad[k], exact[k], atol=1e-9)


def test_user_control_variate_unbiased_and_reduces_variance():
    """h(x) = x with E[h] = μ for cos(x): correlated with f near μ = 1."""
    problem = sg.problems.get("normal_cos", k=1.0)
    _, exact = problem.exact()
    user = sg.ScoreFunction(control_variate=CV.UserControlVariate(lambda x: x, lambda d: d.mean))
    a = sg.estimate_grad(
        problem.f, problem.dist_fn, problem.params(), n=2**16, seed=0, estimator=user
    )
    b = sg.estimate_grad(problem.f, problem.dist_fn, problem.params(), n=2**16, seed=0)
    assert_grad_unbiased(a, exact, what="user cv")
    assert float(a.variance_per_sample["mu"]) < float(b.variance_per_sample["mu"])


def test_expectation_with_fixed_coefficient_control_variate():
    mu = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    est = sg.ScoreFunction(control_variate=CV.DeltaMethod(coefficient=1.0))
    loss = sg.expectation(lambda x: (x - 2.0) ** 2, D.Normal(mu, 1.0), n=32, estimator=est, seed=0)
    loss.backward()
    # quadratic: the Taylor control variate is exact, so value and gradient are exact
    assert abs(float(loss.detach()) - 3.25) < 1e-9 and abs(float(mu.grad) + 3.0) < 1e-9


def test_baseline_with_fixed_coefficient_acts_on_the_residual():
    """DeltaMethod (c = 1) plus a leave-one-out baseline: the baseline must centre f - h, not f
    (centring f would subtract E[f] twice). On cos(x) the combination should be no worse than the
    delta method alone, and unbiased."""
    problem = sg.problems.get("normal_cos", k=1.0)
    _, exact = problem.exact()
    both = sg.ScoreFunction(sg.baselines.LeaveOneOut(), CV.DeltaMethod())
    alone = sg.ScoreFunction(control_variate=CV.DeltaMethod())
    a = sg.estimate_grad(
        problem.f, problem.dist_fn, problem.params(), n=2**15, seed=0, estimator=both
    )
    b = sg.estimate_grad(
        problem.f, problem.dist_fn, problem.params(), n=2**15, seed=0, estimator=alone
    )
    assert_grad_unbiased(a, exact, what="loo + delta")
    for k in exact:
        assert float(a.variance_per_sample[k]) < 1.1 * float(b.variance_per_sample[k])


def test_score_function_state_dict_carries_the_baseline():
    est = sg.ScoreFunction(sg.baselines.MovingAverage(0.5))
    problem = sg.problems.get("normal_square")
    sg.estimate_grad(problem.f, problem.dist_fn, problem.params(), n=256, estimator=est, seed=0)
    clone = sg.ScoreFunction(sg.baselines.MovingAverage(0.5))
    clone.load_state_dict(est.state_dict())
    assert clone.baseline.steps == 1
    assert torch.equal(clone.baseline.current(), est.baseline.current())
