"""Bad input: each raises a scoregrad error whose message names the problem and the fix."""

import numpy as np
import pytest
import torch
from torch.distributions import Normal

import scoregrad as sg
from scoregrad import baselines as B
from scoregrad import control_variates as CV
from scoregrad import sampling as S


def normal(mu, sigma):
    return Normal(mu, sigma)


def params(**kw):
    base = {
        "mu": torch.tensor(0.0, requires_grad=True),
        "sigma": torch.tensor(1.0, requires_grad=True),
    }
    base.update(kw)
    return base


def test_nan_values_name_the_samples():
    def f(x):
        out = x.clone()
        out[3] = float("nan")
        out[5] = float("inf")
        return out

    with pytest.raises(sg.FunctionOutputError, match=r"2 of 16 samples, at indices 3, 5.*Fix"):
        sg.estimate_grad(f, normal, params(), n=16, seed=0)


def test_wrong_number_of_values():
    with pytest.raises(sg.FunctionOutputError, match=r"shape \(15,\) for 16 samples.*\(16,\)"):
        sg.estimate_grad(lambda x: x[:15], normal, params(), n=16, seed=0)


def test_trailing_axis_gets_a_hint():
    with pytest.raises(sg.FunctionOutputError, match="squeeze"):
        sg.estimate_grad(lambda x: x[:, None], normal, params(), n=16, seed=0)


def test_non_numeric_output():
    with pytest.raises(sg.FunctionOutputError, match="not numeric"):
        sg.estimate_grad(lambda x: ["a"] * len(x), normal, params(), n=4, seed=0)


def test_numpy_and_list_outputs_are_accepted():
    a = sg.estimate_grad(lambda x: x.numpy() ** 2, normal, params(), n=64, seed=0)
    b = sg.estimate_grad(lambda x: (x**2).tolist(), normal, params(), n=64, seed=0)
    c = sg.estimate_grad(lambda x: np.asarray(x) ** 2, normal, params(), n=64, seed=0)
    assert torch.allclose(a.grad["mu"], b.grad["mu"]) and torch.allclose(a.grad["mu"], c.grad["mu"])


def test_parameter_without_grad():
    with pytest.raises(sg.ParameterError, match=r"'mu' does not require grad.*requires_grad=True"):
        sg.estimate_grad(lambda x: x, normal, params(mu=torch.tensor(0.0)), n=4)


def test_integer_parameter():
    with pytest.raises(sg.ParameterError, match=r"'mu' has dtype torch.int64.*float"):
        sg.estimate_grad(lambda x: x, normal, params(mu=torch.tensor(1)), n=4)


def test_parameter_not_a_tensor():
    with pytest.raises(sg.ParameterError, match=r"'mu' is a float.*torch.tensor"):
        sg.estimate_grad(lambda x: x, normal, params(mu=1.0), n=4)


def test_invalid_distribution_parameters():
    with pytest.raises(
        sg.ParameterError, match=r"(?s)rejected the parameter values.*log_sigma.exp"
    ):
        sg.estimate_grad(
            lambda x: x, normal, params(sigma=torch.tensor(-1.0, requires_grad=True)), n=4
        )


def test_leave_one_out_needs_two_samples():
    with pytest.raises(sg.SampleSizeError, match=r"at least 2.*n=1.*MovingAverage"):
        sg.estimate_grad(
            lambda x: x, normal, params(), n=1, estimator=sg.ScoreFunction(B.LeaveOneOut())
        )


def test_leave_one_out_direct_call():
    with pytest.raises(sg.SampleSizeError, match="at least 2"):
        B.LeaveOneOut()(torch.tensor([1.0]))


def test_errors_come_before_f_is_evaluated():
    calls = []

    def f(x):
        calls.append(1)
        return x

    with pytest.raises(sg.SampleSizeError):
        sg.estimate_grad(f, normal, params(), n=1, estimator=sg.ScoreFunction(B.LeaveOneOut()))
    with pytest.raises(sg.SampleSizeError, match="even"):
        sg.estimate_grad(
            f, normal, params(), n=5, estimator=sg.ScoreFunction(sampler=S.Antithetic())
        )
    with pytest.raises(sg.SampleSizeError, match="multiple of 8"):
        sg.estimate_grad(f, normal, params(), n=20, estimator=sg.ScoreFunction(sampler=S.QMC(8)))
    assert calls == []


def test_control_variate_mean_with_wrong_shape():
    cv = CV.UserControlVariate(lambda x: x, lambda d: torch.stack([d.mean, d.mean]))
    with pytest.raises(sg.ControlVariateError, match=r"0-d tensor.*got \(2,\)"):
        sg.estimate_grad(
            lambda x: x, normal, params(), n=8, estimator=sg.ScoreFunction(control_variate=cv)
        )


def test_control_variate_h_with_wrong_shape():
    cv = CV.UserControlVariate(lambda x: x[:3], lambda d: d.mean)
    with pytest.raises(sg.ControlVariateError, match=r"one value per sample"):
        sg.estimate_grad(
            lambda x: x, normal, params(), n=8, estimator=sg.ScoreFunction(control_variate=cv)
        )


def test_delta_method_on_non_differentiable_f():
    est = sg.ScoreFunction(control_variate=CV.DeltaMethod())
    with pytest.raises(sg.EstimatorNotApplicable, match="not differentiable"):
        sg.estimate_grad(
            lambda x: torch.as_tensor(np.sign(x.numpy())), normal, params(), n=8, estimator=est
        )


def test_delta_method_on_categorical():
    logits = torch.zeros(3, requires_grad=True)
    est = sg.ScoreFunction(control_variate=CV.DeltaMethod())
    with pytest.raises(sg.EstimatorNotApplicable, match="ScoreControlVariate"):
        sg.estimate_grad(
            lambda x: x.float(),
            lambda logits: torch.distributions.Categorical(logits=logits),
            {"logits": logits},
            n=8,
            estimator=est,
        )


def test_qmc_without_inverse_cdf():
    conc = torch.ones(3, requires_grad=True)
    with pytest.raises(sg.EstimatorNotApplicable, match="no inverse CDF.*register_icdf"):
        sg.estimate_grad(
            lambda x: x[:, 0],
            lambda conc: torch.distributions.Dirichlet(conc),
            {"conc": conc},
            n=32,
            estimator=sg.ScoreFunction(sampler=S.QMC(4)),
        )


def test_bad_n_and_bad_dist():
    with pytest.raises(sg.SampleSizeError, match="positive integer"):
        sg.estimate_grad(lambda x: x, normal, params(), n=0)
    with pytest.raises(sg.ParameterError, match="must return a torch.distributions"):
        sg.estimate_grad(lambda x: x, lambda mu, sigma: mu, params(), n=4)
    with pytest.raises(TypeError, match="Distribution"):
        sg.expectation(lambda x: x, "not a distribution", n=4)


def test_errors_are_value_errors():
    assert issubclass(sg.ScoregradError, ValueError)
