"""Prepared estimates: same numbers as the one-shot doors, rebuilt (or refused) on new shapes."""

import pytest
import torch
import torch.distributions as D

import scoregrad as sg
from scoregrad.core import seeded
from scoregrad.errors import ArgumentError, ParameterError
from scoregrad.testing import assert_grad_unbiased


def normal(mu, log_sigma):
    return D.Normal(mu, log_sigma.exp())


def bernoulli(theta):
    return D.Bernoulli(logits=theta)


def cost(x):
    return ((x - 1.0) ** 2).sum(-1)


def bits(x):
    return ((x - 0.45) ** 2).sum(-1)


CASES = {
    "score_function": (normal, cost, lambda: sg.ScoreFunction(), 64),
    "loo": (normal, cost, lambda: sg.ScoreFunction(sg.baselines.LeaveOneOut()), 64),
    "antithetic": (normal, cost, lambda: sg.ScoreFunction(sampler=sg.sampling.Antithetic()), 64),
    "pathwise": (normal, cost, lambda: sg.Pathwise(), 64),
    "measure_valued": (normal, cost, lambda: sg.MeasureValued(), 16),
    "arm": (bernoulli, bits, lambda: sg.ARM(), 8),
    "disarm": (bernoulli, bits, lambda: sg.DisARM(), 8),
    "relax": (bernoulli, bits, lambda: sg.RELAX(), 8),
    "rloo": (bernoulli, bits, lambda: sg.RLOO(), 8),
}


def _params(dist_fn, seed=0):
    g = torch.Generator().manual_seed(seed)
    names = ["mu", "log_sigma"] if dist_fn is normal else ["theta"]
    return {k: (0.3 * torch.randn(3, generator=g)).requires_grad_() for k in names}


@pytest.mark.parametrize("name", sorted(CASES))
def test_prepared_and_one_shot_are_bitwise_identical(name):
    """Call for call, with the same seeds and two fresh estimators (stateful ones such as RELAX
    then learn alike), the prepared path and estimate_grad give the same bits."""
    dist_fn, f, make, n = CASES[name]
    values = [_params(dist_fn, 0), _params(dist_fn, 1), _params(dist_fn, 0)]
    with seeded(0):
        one = make()
    with seeded(0):  # the same initial networks for estimators that have them
        two = make()
    prepared = sg.prepare(f, dist_fn, values[0], n=n, estimator=two)
    for i, params in enumerate(values):
        a = sg.estimate_grad(f, dist_fn, params, n=n, estimator=one, seed=i)
        b = prepared(params, seed=i)
        assert torch.equal(a.value, b.value) and torch.equal(a.value_stderr, b.value_stderr)
        for k in params:
            assert torch.equal(a.grad[k], b.grad[k]), k
            assert torch.equal(a.stderr[k], b.stderr[k]), k
        assert (a.n, a.n_evals, a.n_units) == (b.n, b.n_evals, b.n_units)
    assert prepared.rebuilds == 0


@pytest.mark.parametrize("name", ["score_function", "disarm", "rloo"])
def test_prepared_expectation_is_the_one_shot_surrogate(name):
    dist_fn, f, make, n = CASES[name]
    params = _params(dist_fn)
    loss_of = sg.prepare_expectation(f, n=n, estimator=make())
    for _ in range(2):
        a = sg.expectation(f, dist_fn(**params), n=n, estimator=make(), seed=5)
        ga = torch.autograd.grad(a, list(params.values()))
        b = loss_of(dist_fn(**params), seed=5)
        gb = torch.autograd.grad(b, list(params.values()))
        assert torch.equal(a, b)
        assert all(torch.equal(x, y) for x, y in zip(ga, gb))
    assert loss_of.rebuilds == 0


def test_prepared_estimate_is_right_for_new_values():
    """Statistically right at a parameter value other than the one it was prepared with."""
    mu = torch.zeros(2, requires_grad=True)
    prepared = sg.prepare(cost, lambda mu: D.Normal(mu, 1.0), {"mu": mu}, n=20_000)
    new = torch.tensor([0.5, 2.0], requires_grad=True)
    est = prepared({"mu": new}, seed=11)
    assert_grad_unbiased(est, {"mu": 2 * (new.detach() - 1.0)})


def test_new_shapes_rebuild_and_say_why_or_are_refused_when_strict():
    prepared = sg.prepare(cost, normal, _params(normal), n=32)
    wider = {k: torch.zeros(5, requires_grad=True) for k in ("mu", "log_sigma")}
    est = prepared(wider, seed=0)
    assert est.grad["mu"].shape == (5,)
    assert prepared.rebuilds == 1 and "shape" in prepared.last_rebuild
    strict = sg.prepare(cost, normal, _params(normal), n=32, strict=True)
    with pytest.raises(ArgumentError, match="prepare another one"):
        strict(wider)
    loss_of = sg.prepare_expectation(bits, n=8, estimator=sg.DisARM(), strict=True)
    loss_of(D.Bernoulli(logits=torch.zeros(3, requires_grad=True)))
    with pytest.raises(ArgumentError, match="prepare another one"):
        loss_of(D.Bernoulli(logits=torch.zeros(4, requires_grad=True)))


def test_every_call_still_validates_values_and_arguments():
    prepared = sg.prepare(cost, lambda mu, s: D.Normal(mu, s), {
        "mu": torch.zeros(2, requires_grad=True), "s": torch.ones(2, requires_grad=True)
    }, n=16)  # fmt: skip
    with pytest.raises(ParameterError, match="rejected the parameter values"):
        prepared(
            {"mu": torch.zeros(2, requires_grad=True), "s": -torch.ones(2, requires_grad=True)}
        )
    with pytest.raises(ParameterError, match="does not require grad"):
        prepared({"mu": torch.zeros(2), "s": torch.ones(2, requires_grad=True)})
    with pytest.raises(sg.ScoregradError):
        prepared({"mu": torch.zeros(2, requires_grad=True), "s": torch.ones(2, requires_grad=True)},
                 seed="x")  # fmt: skip


def test_deferred_finiteness_still_names_the_samples():
    prepared = sg.prepare(lambda x: torch.log(x), lambda mu: D.Normal(mu, 1.0),
                          {"mu": torch.zeros((), requires_grad=True)}, n=64)  # fmt: skip
    with pytest.raises(sg.FunctionOutputError, match="non-finite values"):
        prepared({"mu": torch.zeros((), requires_grad=True)}, seed=0)
    loss_of = sg.prepare_expectation(lambda x: torch.log(x), n=64)
    with pytest.raises(sg.FunctionOutputError, match="non-finite values"):
        loss_of(D.Normal(torch.zeros((), requires_grad=True), 1.0), seed=0)


def test_chunks_are_sized_by_what_a_unit_evaluates():
    """A unit's memory is its gradient row plus one draw per evaluation of f: the measure-valued
    estimator on a D-dimensional batch evaluates f at 1 + 2D copies of its draw, so its chunks
    are smaller by about that factor (one chunk of n = 200 at D = 1000 held 3.4 GB)."""
    from scoregrad.core.chunks import CHUNK_ELEMENTS

    asked = []

    class Recording(sg.MeasureValued):
        def contributions(self, evaluator, dist_fn, params, n, context=None):
            asked.append(n)
            return super().contributions(evaluator, dist_fn, params, n, context)

    d = 200
    mu = torch.zeros(d, dtype=torch.float64, requires_grad=True)
    est = sg.estimate_grad(lambda x: (x**2).sum(-1), lambda mu: D.Normal(mu, 1.0), {"mu": mu},
                           n=100, estimator=Recording(), seed=0)  # fmt: skip
    per_unit = d + 8 + (1 + 2 * d) * d
    assert max(asked) <= max(1, CHUNK_ELEMENTS // per_unit) and sum(asked) == 100
    assert est.n_evals == 100 * (1 + 2 * d)


FAMILIES = {  # (family, unconstrained): parameters, and whether they are checked by outcome
    (D.Normal, True): (("loc", "scale"), True),
    (D.Bernoulli, True): (("logits",), True),
    (D.Poisson, True): (("rate",), True),
    (D.Exponential, True): (("rate",), True),
    (D.Gamma, True): (("concentration", "rate"), True),
    (D.Bernoulli, False): (("logits",), True),  # a real constraint: only NaN is rejected
    (D.Normal, False): (("loc", "scale"), False),  # a positive scale is checked on every call
}


ESTIMATORS = {  # name: (factory, checked by outcome: it scores every sample, keeps no state)
    "loo": (lambda: sg.ScoreFunction(sg.baselines.LeaveOneOut()), True),
    "moving_average": (lambda: sg.ScoreFunction(sg.baselines.MovingAverage()), False),
    "rloo": (lambda: sg.RLOO(), True),
    "pathwise": (lambda: sg.Pathwise(), False),  # finite at a zero scale: x = loc
    "arm": (lambda: sg.ARM(), False),  # finite at NaN logits: u < σ(NaN) is False
    "measure_valued": (lambda: sg.MeasureValued(), False),
}


@pytest.mark.parametrize("case", list(FAMILIES), ids=lambda c: f"{c[0].__name__}-{c[1]}")
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_a_family_checked_by_outcome_fails_as_with_every_check(case, name):
    """A Family skips torch's per-call checks (``checked_by_outcome``) only where a value torch
    rejects (NaN, or exp(u) underflowing to 0) fails the estimate, which then validates: the
    same error as with every check (a ParameterError naming the values, not an estimate or a
    blamed f), for estimators that score every sample and keep no state; the others (ARM's
    estimate is finite at NaN logits) keep torch's checks. The reference is the same Family
    behind a plain function, which declares nothing and so is checked on every call."""
    family, unconstrained = case
    names, by_outcome = FAMILIES[case]
    fam = sg.Family(family, unconstrained=unconstrained)

    make, estimator_ok = ESTIMATORS[name]
    if make().supports(fam(**{k: torch.ones(3) for k in names})) is not None:
        pytest.skip(f"{name} does not apply to {family.__name__}")

    def prepared_with(dist_fn):
        return sg.prepare(lambda x: (x * x).sum(-1), dist_fn, params, n=16, estimator=make())

    params = {k: torch.full((3,), 0.0 if unconstrained or k != "scale" else 1.0,
                            requires_grad=True) for k in names}  # fmt: skip
    fast, checked = prepared_with(fam), prepared_with(lambda **kw: fam(**kw))
    assert fast.dist_fn.checked_by_outcome is (by_outcome and estimator_ok)
    assert not checked.dist_fn.checked_by_outcome
    assert torch.isfinite(fast(params, seed=0).grad[names[0]]).all()
    rejected = 0
    for k in names:
        for bad in (float("nan"), -200.0, float("-inf"), float("inf")):
            q = {j: v.detach().clone().requires_grad_() for j, v in params.items()}
            with torch.no_grad():
                q[k][1] = bad
            outcomes = []
            for prepared in (fast, checked):
                try:
                    prepared(q, seed=0)
                    outcomes.append(None)
                except sg.ScoregradError as e:
                    outcomes.append((type(e), str(e).split(":")[0]))
            assert outcomes[0] == outcomes[1], (k, bad)
            rejected += outcomes[1] is not None and outcomes[1][0] is ParameterError
    assert rejected >= len(names)  # NaN at least, for every parameter
