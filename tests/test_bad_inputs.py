"""Every bad or unusual input of issue 9, with the behaviour it gets.

``REFUSED`` lists the inputs that raise, with the ``ScoregradError`` subclass and a pattern of the
message (which names the problem and the fix); each must raise before f is evaluated where that is
possible. The tests after it are the inputs that are *right*, each checked as a statistic: a
z-test at a fixed seed, |z| < 4.42 per component (false-alarm rate 1e-5 each,
``scoregrad.testing``).

Classes of silent wrong answers (issue 9, item 2) and what they get now:

=====================================================  ===========================================
input                                                  behaviour
=====================================================  ===========================================
score function, support moving with θ (Uniform(0, θ),  EstimatorNotApplicable naming pathwise /
Pareto scale, shifted Exponential, Independent wrap)   measure_valued (both doors, VIMCO and RLOO)
pathwise on floor / round / x > 0                      EstimatorNotApplicable naming score_function
                                                       (both doors; expectation when backward runs)
score() of points outside the support                  SupportError naming the points
expectation + executor, f's output needs grad          ExecutorError before any remote evaluation
pathwise (or any f-differentiating estimator)          ExecutorError
  + executor
float64 parameters                                     float64 values, gradients, standard errors
f = 1e9 + x (float64) with float32 parameters          value error ≈ 1/√n, not 0 (z-tested)
float16 / bfloat16 parameters                          ParameterError: use float32
a parameter on its domain's boundary (probs = 1)       ParameterError (the score does not exist;
                                                       was NaN ± NaN)
f using a parameter directly in estimate_grad          FunctionOutputError naming it (∂f/∂θ would
                                                       be missing; expectation keeps f's graph)
f modifying its input in place                         FunctionOutputError (the scores would use
                                                       the modified samples)
a parameter dist_fn never uses (float(p), p.item())    UnreachedParameterWarning (the 0 ± 0 is a
                                                       broken graph, not a measurement)
n = 1 (one independent unit)                           TooFewUnitsWarning: the standard error is
                                                       NaN (was NaN without a word)
=====================================================  ===========================================
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
import torch.distributions as D

import scoregrad as sg
from scoregrad import baselines as B
from scoregrad import control_variates as CV
from scoregrad.testing import Z_CRIT, assert_close_in_se, assert_grad_unbiased
from scoregrad.testing import assert_value_unbiased as value_ok


def leaf(v, dtype=torch.float32):
    return torch.tensor(v, dtype=dtype, requires_grad=True)


def normal(mu):
    return D.Normal(mu, 1.0)


def P():
    return {"mu": leaf(0.5)}


class Calls:
    """f = x, recording how often it was called (bad input must be refused before f runs)."""

    def __init__(self, out=None):
        self.calls = 0
        self.out = out

    def __call__(self, x):
        self.calls += 1
        return x if self.out is None else self.out(x)


def est(f=None, **kw):
    kw.setdefault("n", 16)
    dist_fn = kw.pop("dist_fn", normal)
    params = kw.pop("params", None) or P()
    return lambda g: sg.estimate_grad(g if f is None else f, dist_fn, params, **kw)


def exp(dist=None, f=None, **kw):
    kw.setdefault("n", 16)
    dist = dist if dist is not None else normal(leaf(0.5))
    return lambda g: sg.expectation(g if f is None else f, dist, **kw)


theta = leaf(2.0)
W = leaf(2.0)
PARAM = {"mu": leaf(0.5)}
_pool = ThreadPoolExecutor(2)

#: (label, call taking f, error class, message pattern, f must not have run)
REFUSED = [
    # estimators and baselines given as names or classes (item 4)
    (
        "estimator as a name",
        est(estimator="score_function"),
        sg.errors.EstimatorArgumentError,
        r"is a name.*sg\.ScoreFunction\(\)",
        True,
    ),
    (
        "estimator as a misspelt name",
        est(estimator="disram"),
        sg.errors.EstimatorArgumentError,
        r"did you mean disarm",
        True,
    ),
    (
        "estimator as a class",
        est(estimator=sg.ScoreFunction),
        sg.errors.EstimatorArgumentError,
        r"is a class, not an instance.*sg\.ScoreFunction\(\)",
        True,
    ),
    (
        "estimator as a class (expectation)",
        exp(estimator=sg.DisARM),
        sg.errors.EstimatorArgumentError,
        r"sg\.DisARM\(\)",
        True,
    ),
    (
        "estimator of another type",
        est(estimator=3),
        sg.errors.EstimatorArgumentError,
        r"instance of Estimator",
        True,
    ),
    (
        "baseline as a class",
        lambda f: sg.ScoreFunction(baseline=B.LeaveOneOut),
        sg.errors.EstimatorArgumentError,
        r"baseline=LeaveOneOut is a class.*LeaveOneOut\(\)",
        True,
    ),
    (
        "baseline as a name",
        lambda f: sg.ScoreFunction(baseline="loo"),
        sg.errors.EstimatorArgumentError,
        r"is a name.*sg\.baselines\.LeaveOneOut\(\)",
        True,
    ),
    (
        "control variate as a class",
        lambda f: sg.ScoreFunction(control_variate=CV.DeltaMethod),
        sg.errors.EstimatorArgumentError,
        r"DeltaMethod\(\)",
        True,
    ),
    (
        "sampler as a class",
        lambda f: sg.ScoreFunction(sampler=sg.sampling.Antithetic),
        sg.errors.EstimatorArgumentError,
        r"Antithetic\(\)",
        True,
    ),
    # sizes and seeds
    ("chunk_size=0", est(chunk_size=0), sg.errors.BatchSizeError, r"chunk_size.*positive", True),
    ("chunk_size=-5", est(chunk_size=-5), sg.errors.BatchSizeError, r"got -5", True),
    ("chunk_size=2.5", est(chunk_size=2.5), sg.errors.BatchSizeError, r"got 2\.5", True),
    ("batch_size=0", est(batch_size=0), sg.errors.BatchSizeError, r"batch_size", True),
    ("batch_size='8'", est(batch_size="8"), sg.errors.BatchSizeError, r"batch_size", True),
    (
        "chunk_size below a leave-one-out's two units",
        est(estimator=sg.ScoreFunction(B.LeaveOneOut()), chunk_size=1),
        sg.errors.BatchSizeError,
        r"chunks of 1 samples.*leave-one-out.*raise chunk_size",
        True,
    ),
    ("seed as a string", est(seed="0"), sg.errors.SeedError, r"integer.*seed=0", True),
    ("seed as a float", est(seed=1.5), sg.errors.SeedError, r"got 1\.5", True),
    ("seed as a string (expectation)", exp(seed="a"), sg.errors.SeedError, r"seed", True),
    ("n=True", est(n=True), sg.SampleSizeError, r"got True \(a bool\)", True),
    ("n=0", est(n=0), sg.SampleSizeError, r"positive integer", True),
    ("n=10.0", est(n=10.0), sg.SampleSizeError, r"got 10\.0", True),
    ("n='10' (expectation)", exp(n="10"), sg.SampleSizeError, r"positive integer", True),
    # what f returns
    ("f returns None", est(f=lambda x: None), sg.FunctionOutputError, r"None.*return", False),
    (
        "f returns complex",
        est(f=lambda x: x.to(torch.complex64)),
        sg.FunctionOutputError,
        r"complex.*real part",
        False,
    ),
    (
        "f returns complex NumPy",
        est(f=lambda x: x.numpy() + 1j),
        sg.FunctionOutputError,
        r"complex",
        False,
    ),
    ("f returns None (expectation)", exp(f=lambda x: None), sg.FunctionOutputError, r"None", False),
    (
        "f is not callable",
        lambda f: sg.estimate_grad(3, normal, P(), n=4),
        sg.FunctionOutputError,
        r"callable",
        True,
    ),
    (
        "f modifies x in place",
        est(f=lambda x: x.sub_(1.0)),
        sg.FunctionOutputError,
        r"in place.*clone",
        False,
    ),
    (
        "f modifies x in place (expectation)",
        exp(f=lambda x: x.clamp_(min=0.0)),
        sg.FunctionOutputError,
        r"in place",
        False,
    ),
    (
        "f uses a parameter directly (estimate_grad)",
        est(f=lambda x: x * PARAM["mu"], params=PARAM),
        sg.FunctionOutputError,
        r"uses the parameter\(s\) mu directly.*expectation",
        False,
    ),
    (
        "f uses a parameter directly (pathwise)",
        est(f=lambda x: x * PARAM["mu"], params=PARAM, estimator=sg.Pathwise()),
        sg.FunctionOutputError,
        r"mu directly",
        False,
    ),
    (
        "context with the wrong number of rows",
        est(estimator=sg.ScoreFunction(B.Learned()), context=torch.zeros(3, 2), n=10),
        sg.errors.ArgumentError,
        r"3 rows for n=10",
        True,
    ),
    (
        "Bernoulli probs on the boundary (p = 1)",  # moving: the outcome 0 is never drawn
        est(params={"p": leaf(1.0)}, dist_fn=lambda p: D.Bernoulli(probs=p), n=32),
        sg.EstimatorNotApplicable,
        r"exactly 0 or 1 moves.*measure_valued.*logits",
        True,
    ),
    # distributions and parameters
    (
        "expectation on a string",
        lambda f: sg.expectation(f, "normal", n=4),
        sg.errors.DistributionError,
        r"Distribution.*Normal\(mu, sigma\)",
        True,
    ),
    (
        "mixed dtypes",
        est(
            params={"a": leaf(0.0), "b": leaf(1.0, torch.float64)},
            dist_fn=lambda a, b: D.Normal(a, b),
        ),
        sg.ParameterError,
        r"mix dtypes.*float32",
        True,
    ),
    (
        "float16 parameters",
        est(params={"mu": leaf(0.0, torch.float16)}),
        sg.ParameterError,
        r"float16.*float32",
        True,
    ),
    (
        "bfloat16 parameters",
        est(params={"mu": leaf(0.0, torch.bfloat16)}),
        sg.ParameterError,
        r"bfloat16.*float32",
        True,
    ),
    (
        "float16 distribution (expectation)",
        exp(D.Normal(leaf(0.0, torch.float16), 1.0)),
        sg.ParameterError,
        r"float16.*float32",
        True,
    ),
    (
        "dist_fn not callable",
        est(dist_fn=3),
        sg.ParameterError,
        r"dist_fn must be a function",
        True,
    ),
    (
        "dist_fn with other argument names",
        est(dist_fn=lambda m: D.Normal(m, 1.0)),
        sg.ParameterError,
        r"names mu.*lambda mu",
        True,
    ),
    (
        "score of a bare number",
        lambda f: sg.score(normal, P(), 1.0),
        sg.errors.SupportError,
        r"leading sample axis",
        True,
    ),
    # item 2: supports that move with θ
    (
        "score function on Uniform(0, θ)",
        est(params={"theta": theta}, dist_fn=lambda theta: D.Uniform(0.0, theta)),
        sg.EstimatorNotApplicable,
        r"(?s)support.*depends on the parameters.*pathwise",
        True,
    ),
    (
        "score function on Uniform(0, θ) (expectation)",
        exp(D.Uniform(0.0, theta)),
        sg.EstimatorNotApplicable,
        r"Leibniz.*pathwise",
        True,
    ),
    (
        "score function on Pareto(θ, 3)",
        est(params={"theta": theta}, dist_fn=lambda theta: D.Pareto(theta, 3.0)),
        sg.EstimatorNotApplicable,
        r"Pareto.*measure_valued",
        True,
    ),
    (
        "score function on Independent(Uniform(0, θ))",
        est(
            params={"theta": theta},
            dist_fn=lambda theta: D.Independent(D.Uniform(torch.zeros(2), theta.expand(2)), 1),
        ),
        sg.EstimatorNotApplicable,
        r"support",
        True,
    ),
    (
        "score function on θ + Exponential(1)",
        est(
            params={"theta": theta},
            dist_fn=lambda theta: D.TransformedDistribution(
                D.Exponential(torch.tensor(1.0)), [D.AffineTransform(theta, 1.0)]
            ),
        ),
        sg.EstimatorNotApplicable,
        r"transforms.*move the bound 0",
        True,
    ),
    (
        "RLOO on Uniform(0, θ)",
        est(
            params={"theta": theta},
            estimator=sg.RLOO(),
            dist_fn=lambda theta: D.Uniform(0.0, theta),
        ),
        sg.EstimatorNotApplicable,
        r"support",
        True,
    ),
    (
        "VIMCO on Uniform(0, θ)",
        est(
            params={"theta": theta},
            estimator=sg.VIMCO(4),
            dist_fn=lambda theta: D.Uniform(0.0, theta),
        ),
        sg.EstimatorNotApplicable,
        r"support",
        True,
    ),
    # item 2: pathwise on step functions
    (
        "pathwise on floor(x)",
        est(f=torch.floor, estimator=sg.Pathwise(), n=64),
        sg.EstimatorNotApplicable,
        r"zero at every sample.*score_function",
        False,
    ),
    (
        "pathwise on round(x)",
        est(f=torch.round, estimator=sg.Pathwise(), n=64),
        sg.EstimatorNotApplicable,
        r"piecewise constant",
        False,
    ),
    (
        "pathwise on x > 0",
        est(f=lambda x: (x > 0).float(), estimator=sg.Pathwise(), n=64),
        sg.EstimatorNotApplicable,
        r"does not depend differentiably",
        False,
    ),
    (
        "pathwise on floor(x) (non-broadcasting dist_fn)",
        est(
            f=lambda x: torch.floor(x).sum(-1),
            estimator=sg.Pathwise(),
            n=32,
            params={"w": leaf([0.5, 0.2])},
            dist_fn=lambda w: D.Normal(torch.stack([w @ torch.ones(2), w @ torch.ones(2)]), 1.0),
        ),
        sg.EstimatorNotApplicable,
        r"piecewise constant",
        False,
    ),
    (
        "gumbel-softmax on round(y)",
        est(
            f=lambda y: torch.round(y).sum(-1),
            estimator=sg.GumbelSoftmax(),
            n=64,
            params={"t": leaf([0.3, -0.2])},
            dist_fn=lambda t: D.Bernoulli(logits=t),
        ),
        sg.EstimatorNotApplicable,
        r"piecewise constant",
        False,
    ),
    # item 2: executors
    (
        "pathwise with an executor",
        est(estimator=sg.Pathwise(), executor=_pool),
        sg.errors.ExecutorError,
        r"drop executor",
        True,
    ),
    (
        "REBAR with an executor",
        est(
            f=lambda b: b.sum(-1),
            estimator=sg.REBAR(),
            executor=_pool,
            params={"t": leaf([0.3])},
            dist_fn=lambda t: D.Bernoulli(logits=t),
        ),
        sg.errors.ExecutorError,
        r"differentiates f",
        True,
    ),
    (
        "expectation with an executor, f uses a parameter",
        exp(f=lambda x: W * x, executor=_pool),
        sg.errors.ExecutorError,
        r"requires grad.*without executor",
        False,
    ),
    # doors an estimator cannot run
    (
        "fitted control-variate coefficient in expectation",
        exp(estimator=sg.ScoreFunction(control_variate=CV.ScoreControlVariate())),
        sg.EstimatorNotApplicable,
        r"declares the door\(s\) estimate_grad",
        True,
    ),
    (
        "ARM on a Normal",
        est(estimator=sg.ARM()),
        sg.EstimatorNotApplicable,
        r"Bernoulli.*apply to Normal here: .*score_function",
        True,
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "pattern", "before_f"),
    [c[1:] for c in REFUSED],
    ids=[c[0] for c in REFUSED],
)
def test_refused(call, error, pattern, before_f):
    f = Calls()
    with pytest.raises(error, match=pattern) as info:
        out = call(f)
        if isinstance(out, torch.Tensor) and out.requires_grad:
            out.backward()  # the expectation door's checks that run in the backward pass
    assert isinstance(info.value, sg.ScoregradError)
    if before_f:
        assert f.calls == 0, "refused only after evaluating f"


def test_scores_outside_the_support():
    lam = leaf(2.0)
    poisson = {"lam": lam}
    for x, shown in ((2.5, r"\[2\.5\]"), (-1.0, r"\[-1\.0\]")):
        with pytest.raises(
            sg.errors.SupportError, match=rf"outside the support of Poisson.*{shown}"
        ):
            sg.score(lambda lam: D.Poisson(lam), poisson, torch.tensor([1.0, x]))
    with pytest.raises(sg.errors.SupportError, match=r"at indices 1;.*Bernoulli"):
        sg.score(lambda lam: D.Bernoulli(logits=lam), poisson, torch.tensor([1.0, 0.5]))
    model = sg.core.SampleModel.expand(lambda lam: D.Poisson(lam), poisson, 2)
    with pytest.raises(sg.errors.SupportError):
        model.score(torch.tensor([3.0, 2.5]), check_support=True)
    # inside the support: (x/λ - 1), exactly; a list of points is taken as a tensor
    s = sg.score(lambda lam: D.Poisson(lam), poisson, torch.tensor([0.0, 4.0]))
    assert torch.allclose(s["lam"], torch.tensor([-1.0, 1.0]))
    s = sg.score(lambda lam: D.Poisson(lam), poisson, [0, 4])
    assert torch.allclose(s["lam"], torch.tensor([-1.0, 1.0]))


# --- doubtful inputs: a warning --------------------------------------------------------------


def test_a_parameter_that_never_reaches_the_distribution_warns():
    """dist_fn(float(mu)) breaks the graph: the gradient 0 ± 0 is not a measurement."""
    mu = leaf(0.5)
    with pytest.warns(sg.core.arguments.UnreachedParameterWarning, match=r"float\(mu\)"):
        e = sg.estimate_grad(lambda x: x**2, lambda mu: D.Normal(mu.item(), 1.0), {"mu": mu},
                             n=64, seed=0)  # fmt: skip
    assert float(e.grad["mu"]) == 0.0
    import warnings

    with warnings.catch_warnings():  # a parameter that reaches it, with an exact zero: no warning
        warnings.simplefilter("error", sg.core.arguments.UnreachedParameterWarning)
        sg.estimate_grad(lambda x: x[:, 1], lambda mu: D.Normal(torch.stack([mu, 0 * mu]), 1.0),
                         {"mu": mu}, n=64, estimator=sg.Pathwise(), seed=0)  # fmt: skip


def test_a_prepared_estimate_checks_reachability_once_and_keeps_warning_for_unreached(monkeypatch):
    """A prepared estimate remembers parameters shown to reach the distribution (their exact
    zeros, e.g. equal samples under a leave-one-out baseline, are measurements: the graph is not
    checked again), and a parameter that never reaches it warns on every call."""
    import warnings

    from scoregrad.core import arguments

    theta = leaf([0.0])
    prepared = sg.prepare(lambda b: b.sum(-1), sg.Family(D.Bernoulli), {"logits": theta}, n=2,
                          estimator=sg.ScoreFunction(sg.baselines.LeaveOneOut()))  # fmt: skip
    checks = []
    real = arguments.held_tensors
    monkeypatch.setattr(arguments, "held_tensors", lambda *a: checks.append(1) or real(*a))
    zeros = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", arguments.UnreachedParameterWarning)
        for seed in range(40):  # two samples: equal (a zero gradient) about half the time
            zeros += float(prepared({"logits": theta}, seed=seed).grad["logits"]) == 0.0
    assert zeros >= 5 and len(checks) <= 1  # at most the first zero before a non-zero one
    mu = leaf(0.5)
    broken = sg.prepare(lambda x: x**2, lambda mu: D.Normal(mu.item(), 1.0), {"mu": mu}, n=8)
    for seed in range(2):
        with pytest.warns(arguments.UnreachedParameterWarning, match=r"float\(mu\)"):
            broken({"mu": mu}, seed=seed)


def test_a_single_unit_warns_that_its_standard_error_is_undefined():
    mu = leaf(0.5)
    for door in (sg.estimate_grad, sg.prepare):
        with pytest.warns(sg.core.result.TooFewUnitsWarning, match="at least two units") as w:
            out = door(lambda x: x**2, lambda mu: D.Normal(mu, 1.0), {"mu": mu}, n=1)
            e = out if door is sg.estimate_grad else out({"mu": mu}, seed=0)
        assert math.isnan(float(e.stderr["mu"])) and math.isfinite(float(e.grad["mu"]))
        assert w[0].filename == __file__  # reported at the caller's line
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", sg.core.result.TooFewUnitsWarning)
        sg.estimate_grad(lambda x: x**2, lambda mu: D.Normal(mu, 1.0), {"mu": mu}, n=2, seed=0)


# --- inputs that are right, checked as statistics ---------------------------------------------


def test_numpy_integers_are_sample_sizes():
    mu = leaf(1.0, torch.float64)
    e = sg.estimate_grad(lambda x: x**2, normal, {"mu": mu}, n=np.int64(40_000), seed=np.int32(3))
    assert e.n == 40_000 and isinstance(e.n, int)
    assert_grad_unbiased(e, {"mu": torch.tensor(2.0)}, "n=np.int64")  # d/dμ (μ² + 1) = 2μ
    loss = sg.expectation(lambda x: x, normal(mu), n=np.int64(8), seed=np.int64(0))
    assert loss.shape == ()


def test_expectation_on_a_distribution_without_mean():
    """LogNormal as a TransformedDistribution (no .mean): E[x] = exp(μ + ½), gradient alike."""
    mu = leaf(0.2, torch.float64)
    dist = D.TransformedDistribution(D.Normal(mu, 1.0), [D.ExpTransform()])
    with pytest.raises((NotImplementedError, RecursionError)):
        dist.mean  # noqa: B018  (reading it is what crashed expectation)
    reps, n = 400, 256
    grads = []
    for r in range(reps):
        loss = sg.expectation(lambda x: x, dist, n=n, seed=r)
        (g,) = torch.autograd.grad(loss, mu)
        grads.append(g)
    g = torch.stack(grads)
    exact = math.exp(0.2 + 0.5)
    assert_close_in_se(g.mean(), exact, g.std() / math.sqrt(reps), "TransformedDistribution")


def test_a_chunk_size_below_a_pair_keeps_pairs_whole():
    """chunk_size=1 with antithetic pairs: the planner rounds chunks up to whole pairs; right."""
    mu = leaf(0.5, torch.float64)
    e = sg.estimate_grad(lambda x: x**2, normal, {"mu": mu}, n=4000, chunk_size=1, seed=0,
                         estimator=sg.ScoreFunction(sampler=sg.sampling.Antithetic()))  # fmt: skip
    assert e.n_units == 2000
    assert_grad_unbiased(e, {"mu": torch.tensor(1.0)}, "antithetic, chunk_size=1")


def test_pathwise_is_right_where_the_support_moves():
    """Uniform(0, θ): E[x²] = θ²/3, gradient 2θ/3; pathwise applies where the score does not."""
    th = leaf(2.0, torch.float64)
    e = sg.estimate_grad(lambda x: x**2, lambda th: D.Uniform(0.0, th), {"th": th}, n=20_000,
                         estimator=sg.Pathwise(), seed=0)  # fmt: skip
    assert_grad_unbiased(e, {"th": torch.tensor(4.0 / 3.0)}, "pathwise on Uniform(0, θ)")


def test_score_function_still_applies_when_the_bounds_are_constant():
    """Uniform(0, 2) with θ elsewhere, and Pareto with only its shape α learned."""
    a = leaf(3.0, torch.float64)
    e = sg.estimate_grad(lambda x: x, lambda a: D.Pareto(1.0, a), {"a": a}, n=200_000, seed=1)
    # E[x] = α/(α-1), d/dα = -1/(α-1)² = -1/4
    assert_grad_unbiased(e, {"a": torch.tensor(-0.25)}, "Pareto shape")


def test_pathwise_on_a_smooth_f_with_zero_gradient_somewhere_is_right():
    """relu has zero derivative on half the samples: not refused, and right (z-test)."""
    mu = leaf(0.0, torch.float64)
    e = sg.estimate_grad(torch.relu, normal, {"mu": mu}, n=20_000, estimator=sg.Pathwise(), seed=0)
    assert_grad_unbiased(e, {"mu": torch.tensor(0.5)}, "relu")  # d/dμ E[relu] = Φ(μ) = ½


def test_pathwise_where_f_ignores_the_moving_coordinate_is_right():
    """f reads a coordinate the parameter does not move: zero gradient, and not refused."""
    mu = leaf(0.3, torch.float64)
    e = sg.estimate_grad(
        lambda x: x[:, 1] ** 2, lambda mu: D.Normal(torch.stack([mu, torch.zeros_like(mu)], -1), 1.0),
        {"mu": mu}, n=1000, estimator=sg.Pathwise(), seed=0,
    )  # fmt: skip
    assert float(e.grad["mu"]) == 0.0


def test_executor_without_a_parameter_in_f_is_right():
    mu = leaf(0.5, torch.float64)
    with ThreadPoolExecutor(2) as ex:
        grads = []
        for r in range(200):
            loss = sg.expectation(lambda x: x**2, normal(mu), n=64, seed=r, executor=ex)
            grads.append(torch.autograd.grad(loss, mu)[0])
    g = torch.stack(grads)
    assert_close_in_se(g.mean(), 1.0, g.std() / math.sqrt(len(g)), "executor")  # d/dμ = 2μ


def test_f_using_a_parameter_directly_keeps_its_gradient_in_process():
    """d/dw E[w x] = E[x] = μ: kept without an executor (the executor case is refused above)."""
    mu, w = leaf(0.5, torch.float64), leaf(2.0, torch.float64)
    loss = sg.expectation(lambda x: w * x, normal(mu), n=4000, seed=0)
    gw, gmu = torch.autograd.grad(loss, [w, mu])
    assert gw is not None and abs(float(gw) - 0.5) < 4.42 / math.sqrt(4000)
    assert gmu is not None


@pytest.mark.parametrize(
    "estimator",
    [sg.ScoreFunction(), sg.ScoreFunction(B.LeaveOneOut(), CV.ScoreControlVariate()),
     sg.Pathwise(), sg.MeasureValued(), sg.RLOO(), sg.VIMCO(4)],
    ids=repr,
)  # fmt: skip
def test_float64_parameters_get_float64_results(estimator):
    mu = leaf(0.5, torch.float64)
    e = sg.estimate_grad(lambda x: x.float() ** 2, normal, {"mu": mu}, n=64, estimator=estimator,
                         seed=0)  # fmt: skip
    assert e.value.dtype == e.value_stderr.dtype == torch.float64
    assert e.grad["mu"].dtype == e.stderr["mu"].dtype == torch.float64
    if "expectation" in estimator.doors:
        loss = sg.expectation(lambda x: x**2, normal(mu), n=8, estimator=estimator, seed=0)
        assert loss.dtype == torch.float64
        assert torch.autograd.grad(loss, mu)[0].dtype == torch.float64


@pytest.mark.parametrize("kind", ["tensor", "numpy", "list"])
def test_f_keeps_its_precision_with_float32_parameters(kind):
    """f = 1e9 + x in float64 with float32 parameters: value 1e9 + μ with error ≈ 1/√n (it was
    reported as exactly 0, x rounded away in float32)."""
    mu = leaf(0.25)
    convert = {
        "tensor": lambda x: 1e9 + x.double(),
        "numpy": lambda x: 1e9 + x.numpy().astype(np.float64),
        "list": lambda x: (1e9 + x.numpy().astype(np.float64)).tolist(),
    }[kind]
    n = 10_000
    e = sg.estimate_grad(convert, normal, {"mu": mu}, n=n, seed=0)
    assert e.value.dtype == torch.float64
    assert 0.5 / math.sqrt(n) < float(e.value_stderr) < 2.0 / math.sqrt(n)
    value_ok(e, 1e9 + 0.25, f"1e9 + x ({kind})")
    assert e.grad["mu"].dtype == torch.float32


def test_fixed_coefficient_score_control_variate_in_expectation_is_right():
    """h ≡ 1 with c = 1 is a constant baseline of 1 (it crashed on E[h] = None before)."""
    mu = leaf(0.5, torch.float64)
    est_ = sg.ScoreFunction(control_variate=CV.ScoreControlVariate(1.0))
    grads = []
    for r in range(300):
        loss = sg.expectation(lambda x: x**2, normal(mu), n=32, estimator=est_, seed=r)
        grads.append(torch.autograd.grad(loss, mu)[0])
    g = torch.stack(grads)
    assert_close_in_se(g.mean(), 1.0, g.std() / math.sqrt(len(g)), "fixed score CV")


def test_the_list_of_refusals_is_z_crit_consistent():
    assert Z_CRIT == 4.42 and len({c[0] for c in REFUSED}) == len(REFUSED)


def test_score_refuses_points_of_another_shape():
    """sg.score takes points shaped (m, *batch, *event): another trailing shape was a bare
    broadcasting RuntimeError (or, for (m, 1) against a scalar family, silently an (m, m) table);
    a shape that broadcasts to a point still works."""
    mu = leaf([0.5, -0.2])
    dist_fn = lambda mu: D.Normal(mu, 1.0)  # noqa: E731
    with pytest.raises(sg.errors.SupportError, match=r"x has shape \(5, 3\).*\(m, 2\)"):
        sg.score(dist_fn, {"mu": mu}, torch.zeros(5, 3))
    assert sg.score(dist_fn, {"mu": mu}, torch.zeros(4, 1))["mu"].shape == (4, 2)
    lam = leaf(2.0)
    with pytest.raises(sg.errors.SupportError, match=r"numbers, so x must be \(m,\)"):
        sg.score(lambda lam: D.Poisson(lam), {"lam": lam}, torch.ones(3, 1))
