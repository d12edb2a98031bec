"""The estimator registry and the capabilities every estimator declares.

* every registered estimator declares the contract's attributes with the right types;
* ``applicable(dist)`` agrees with what actually runs: an estimator whose ``supports(dist)`` is None
  runs through ``estimate_grad`` without ``EstimatorNotApplicable``, and one that does not apply
  raises it (naming the estimators that do);
* ``evals_per_unit(dist)`` is what ``n_evals`` counts, and ``granularity`` keeps chunks whole;
* batch-dependent baselines are declared (``uses_batch``), and ScoreFunction takes its
  leave-one-out coefficients from the flag, not from the class.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributions as D

import scoregrad as sg
from scoregrad import baselines as B
from scoregrad import control_variates as CV
from scoregrad.estimators import registry
from scoregrad.estimators.base import DOORS, Estimator
from scoregrad.testing import assert_grad_unbiased


def _leaf(v):
    return torch.tensor(v, dtype=torch.float64, requires_grad=True)


#: name -> (dist_fn, params factory, f): a small catalogue of families
FAMILIES = {
    "normal": (lambda a: D.Normal(a, 1.5), lambda: {"a": _leaf([0.3, -0.2])}),
    "bernoulli": (lambda a: D.Bernoulli(logits=a), lambda: {"a": _leaf([0.3, -0.2])}),
    "categorical": (lambda a: D.Categorical(logits=a), lambda: {"a": _leaf([0.3, -0.2, 0.1])}),
    "one_hot": (lambda a: D.OneHotCategorical(logits=a), lambda: {"a": _leaf([0.3, -0.2, 0.1])}),
    "poisson": (lambda a: D.Poisson(a.exp()), lambda: {"a": _leaf([0.3, -0.2])}),
    "exponential": (lambda a: D.Exponential(a.exp()), lambda: {"a": _leaf([0.3])}),
    "dirichlet": (lambda a: D.Dirichlet(a.exp()), lambda: {"a": _leaf([0.3, -0.2, 0.1])}),
    "uniform_0_theta": (lambda a: D.Uniform(0.0, a.exp()), lambda: {"a": _leaf([0.3])}),
    "independent_normal": (lambda a: D.Independent(D.Normal(a, 1.0), 1), lambda: {"a": _leaf([0.3, 0.1])}),
}  # fmt: skip


def f_any(x):
    """Smooth in x, and varying for indices, 0/1 values and one-hot vectors alike."""
    x = x.to(torch.float64).reshape(x.shape[0], -1)
    return (x**2).sum(1) + x[:, 0]


CASES = [(e, fam) for e in registry.registered() for fam in FAMILIES]


def _make(name):
    return registry.estimator_class(name)()


def test_every_registered_estimator_declares_the_contract():
    table = registry.registered()
    assert {"score_function", "rloo", "vimco", "pathwise", "measure_valued", "arm", "disarm",
            "rebar", "relax", "gumbel_softmax", "straight_through"} <= set(table)  # fmt: skip
    normal = D.Normal(torch.zeros(2), 1.0)
    for name, cls in table.items():
        assert cls.name == name and issubclass(cls, Estimator)
        e = cls()
        assert isinstance(e.biased, bool) and isinstance(e.unit, str) and e.unit
        assert isinstance(e.estimates, str)
        assert isinstance(e.samples_per_unit, int) and e.samples_per_unit >= 1
        assert isinstance(e.granularity, int) and e.granularity >= 1
        assert e.doors and set(e.doors) <= DOORS
        assert isinstance(e.needs_differentiable_f, bool) and isinstance(e.needs_rsample, bool)
        assert isinstance(e.needs_f_param_graph, bool)
        why = e.supports(normal)
        assert why is None or (isinstance(why, str) and why)
        assert isinstance(e.evals_per_unit(normal), int)
    assert table["gumbel_softmax"].biased and table["straight_through"].biased
    assert not table["score_function"].biased and not table["disarm"].biased
    assert sg.DisARM().unit == "antithetic pair" and sg.DisARM().samples_per_unit == 2
    assert sg.VIMCO(4).granularity == 4 and sg.VIMCO().estimates != "E[f]"
    assert sg.ScoreFunction(sampler=sg.sampling.Antithetic()).granularity == 2
    assert sg.ScoreFunction(sampler=sg.sampling.QMC(8)).granularity == 8
    assert sg.Pathwise().needs_rsample and sg.Pathwise().needs_differentiable_f
    assert sg.RELAX().needs_differentiable_f is False and sg.REBAR().needs_differentiable_f


@pytest.mark.parametrize(("name", "family"), CASES, ids=[f"{e}-{f}" for e, f in CASES])
def test_applicable_agrees_with_what_runs(name, family):
    dist_fn, make_params = FAMILIES[family]
    params = make_params()
    estimator = _make(name)
    n = 8
    dist = dist_fn(**params)
    applies = name in registry.applicable(dist)
    assert applies == (estimator.supports(dist) is None)
    if applies:
        est = sg.estimate_grad(f_any, dist_fn, params, n=n, estimator=estimator, seed=0)
        assert est.n_evals == n * estimator.evals_per_unit(dist)
        assert all(torch.isfinite(g).all() for g in est.grad.values())
    else:
        with pytest.raises(sg.EstimatorNotApplicable) as info:
            sg.estimate_grad(f_any, dist_fn, params, n=n, estimator=estimator, seed=0)
        message = str(info.value)
        for other in registry.applicable(dist):
            assert other in message  # the message lists what does apply


def test_measure_valued_evals_per_unit_counts_the_differentiated_elements():
    mv = sg.MeasureValued()
    mu, sigma = _leaf([0.1, 0.2, 0.3]), torch.ones(3, dtype=torch.float64)
    # loc differentiated only: 1 + 2 sides × 3 elements; both: + 2 × 3 for the coupled scale
    assert mv.evals_per_unit(D.Normal(mu, sigma)) == 7
    assert mv.evals_per_unit(D.Normal(mu, sigma.clone().requires_grad_())) == 13
    assert sg.MeasureValued(coupling=False).evals_per_unit(D.Normal(mu, _leaf([1.0] * 3))) == 10
    est = sg.estimate_grad(lambda x: x.sum(-1), lambda mu: D.Normal(mu, sigma), {"mu": mu}, n=5,
                           estimator=mv, seed=0)  # fmt: skip
    assert est.n_evals == 5 * 7


def test_granularity_keeps_chunks_whole():
    mu = _leaf(0.0)
    # VIMCO groups of 4 over chunks of 6 (never split: chunks of multiples of 4)
    e = sg.estimate_grad(lambda x: x, lambda mu: D.Normal(mu, 1.0), {"mu": mu}, n=40_000,
                         estimator=sg.VIMCO(4), seed=0, chunk_size=6_002)  # fmt: skip
    assert_grad_unbiased(e, {"mu": torch.tensor(1.0)}, "VIMCO chunked")
    assert e.n_units == 10_000


def test_registering_a_new_estimator_makes_it_known():
    @registry.register_estimator
    class Halved(sg.ScoreFunction):
        """The score function on Normals only (a toy for the registry)."""

        name = "halved_score_function_for_tests"

        def supports(self, dist):
            return None if isinstance(dist, D.Normal) else "it only takes Normals"

    try:
        assert registry.registered()[Halved.name] is Halved
        assert Halved.name in registry.applicable(D.Normal(0.0, 1.0))
        assert Halved.name not in registry.applicable(D.Poisson(1.0))
        from scoregrad.diagnostics import make_estimator

        assert isinstance(make_estimator(Halved.name), Halved)
    finally:
        registry.unregister_estimator(Halved.name)
    assert Halved.name not in registry.registered()


def test_registration_needs_a_snake_case_unique_name():
    with pytest.raises(ValueError, match="snake_case"):

        @registry.register_estimator
        class Bad(Estimator):
            name = "BadName"

    with pytest.raises(ValueError, match="taken"):

        @registry.register_estimator
        class Clash(Estimator):
            name = "score_function"


def test_compare_table_is_built_from_the_registry():
    from scoregrad.diagnostics import ALIASES, ESTIMATORS, make_estimator

    for name, cls in registry.registered().items():
        assert (name in ESTIMATORS) == (cls.estimates == "E[f]")
    for old in ("score_function", "rloo", "optimal_baseline", "pathwise", "mvd", "mvd_coupled",
                "arm", "disarm", "rebar", "relax", "gumbel_softmax", "straight_through"):  # fmt: skip
        assert isinstance(make_estimator(old), Estimator)
    assert ALIASES["mvd_coupled"] == "measure_valued"
    assert make_estimator("mvd").coupling is False and make_estimator("mvd_coupled").coupling


# --- baselines and control variates declare whether they use the batch ---------------------------


def test_baselines_and_control_variates_declare_uses_batch():
    assert B.LeaveOneOut.uses_batch and not B.MovingAverage.uses_batch
    assert not B.NoBaseline.uses_batch and not B.Constant.uses_batch and not B.Learned.uses_batch
    assert CV.ScoreControlVariate().uses_batch and not CV.ScoreControlVariate(1.0).uses_batch


class HalfLeaveOneOut(B.Baseline):
    """b_i = ½ × the mean of f over the other blocks: a batch baseline of a class ScoreFunction
    has never seen."""

    min_units = 2
    uses_batch = True

    def __call__(self, f_values, block=1, context=None):
        return 0.5 * B.LeaveOneOut()(f_values, block, context)


def test_any_batch_baseline_gets_leave_one_out_coefficients():
    """A batch-dependent baseline with a 'loo' control variate: the coefficients are fitted on
    (f_j - f̄_{-i}) s_j (the flag decides), and the estimate is unbiased (z-test)."""
    mu = _leaf([0.5, -1.0])
    dist_fn = lambda mu: D.Normal(mu, 1.0)  # noqa: E731
    f = lambda x: ((x - 1.0) ** 2).sum(-1)  # noqa: E731  E = Σ (μ-1)² + 1, ∇ = 2(μ - 1)
    exact = {"mu": 2 * (mu.detach() - 1.0)}
    make = lambda: sg.ScoreFunction(HalfLeaveOneOut(), CV.ScoreControlVariate())  # noqa: E731
    e = sg.estimate_grad(f, dist_fn, {"mu": mu}, n=100_000, estimator=make(), seed=0)
    assert_grad_unbiased(e, exact, "batch baseline + loo coefficients")

    class Undeclared(HalfLeaveOneOut):
        uses_batch = False

    other = sg.estimate_grad(f, dist_fn, {"mu": mu}, n=1000, seed=1,
                             estimator=sg.ScoreFunction(Undeclared(), CV.ScoreControlVariate()))  # fmt: skip
    same = sg.estimate_grad(f, dist_fn, {"mu": mu}, n=1000, estimator=make(), seed=1)
    assert not torch.equal(other.grad["mu"], same.grad["mu"])  # the flag chose the formula


def test_moving_support_checks_are_general():
    from scoregrad.estimators.applicability import moving_support

    t = torch.tensor(1.5, requires_grad=True)
    moving = [
        D.Uniform(0.0, t), D.Uniform(-t, 0.0), D.Pareto(t, 2.0),
        D.Independent(D.Uniform(torch.zeros(3), t.expand(3)), 1),
        D.TransformedDistribution(D.Exponential(torch.tensor(1.0)), [D.AffineTransform(t, 2.0)]),
        D.TransformedDistribution(D.Beta(2.0, 2.0), [D.AffineTransform(0.0, t)]),
        # an unbounded base mapped onto a bounded set that then moves: (t, t + 1), (t, ∞)
        D.TransformedDistribution(D.Normal(0.0, 1.0), [D.SigmoidTransform(), D.AffineTransform(t, 1.0)]),
        D.TransformedDistribution(D.Normal(0.0, 1.0), [D.ExpTransform(), D.AffineTransform(t, 1.0)]),
        D.MixtureSameFamily(D.Categorical(torch.ones(2)), D.Uniform(torch.zeros(2), t.expand(2))),
        D.Binomial(4 * t, logits=torch.tensor(0.0)),  # total_count bounds the support
    ]  # fmt: skip
    fixed = [
        D.Uniform(0.0, 2.0), D.Normal(t, 1.0), D.Gamma(t, 1.0), D.Pareto(1.0, t), D.Beta(t, 2.0),
        D.TransformedDistribution(D.Normal(t, 1.0), [D.ExpTransform()]),
        D.TransformedDistribution(D.Exponential(torch.tensor(1.0)), [D.PowerTransform(t)]),
        D.TransformedDistribution(D.Normal(0.0, 1.0), [D.AffineTransform(t, 2.0)]),
        D.TransformedDistribution(D.Normal(0.0, 1.0), [D.ExpTransform(), D.AffineTransform(0.0, t)]),
        D.TransformedDistribution(D.Normal(torch.zeros(2), 1.0), [D.StickBreakingTransform()]),
        D.Binomial(10, logits=t), D.LogNormal(t, 1.0),
    ]  # fmt: skip
    for d in moving:
        assert moving_support(d) is not None, d
        assert "score_function" not in registry.applicable(d)
    for d in fixed:
        assert moving_support(d) is None, d
