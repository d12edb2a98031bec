"""The categorical estimators: ARSM, sum-and-sample, unordered set, Gumbel-Rao, REBAR/RELAX.

Unbiasedness: z-tests against exact gradients (|z| < 4.42 per component, false alarm 1e-5 each,
fixed seeds; about 250 components in this file, so its false-alarm chance is about 0.3%).
Variances: measured against exact values from ``scoregrad.diagnostics.enumeration`` with the
same z bound, the standard error of a variance taken from the per-unit fourth moment.
"""

import itertools
import math

import pytest
import torch
import torch.distributions as D

import scoregrad as sg
from scoregrad.diagnostics import enumeration as ex
from scoregrad.estimators.arsm import pseudo_actions
from scoregrad.estimators.unordered_set import log_set_recursion
from scoregrad.problems import CATALOGUE
from scoregrad.testing import Z_CRIT, assert_close_in_se, assert_grad_unbiased

UNBIASED = {
    "arsm": lambda: sg.ARSM(),
    "rb_reinforce_k1": lambda: sg.RaoBlackwellReinforce(1),
    "rb_reinforce_k2": lambda: sg.RaoBlackwellReinforce(2),
    "rb_reinforce_k2_nobl": lambda: sg.RaoBlackwellReinforce(2, baseline=False),
    "unordered_set_k2": lambda: sg.UnorderedSet(2),
    "unordered_set_k3_nobl": lambda: sg.UnorderedSet(3, baseline=False),
    "rebar": lambda: sg.REBAR(),
    "relax": lambda: sg.RELAX(),
    "relax_relaxed_f": lambda: sg.RELAX(relaxed_f=True),
}
PROBLEMS = ["categorical_table", "onehot_table", "categorical_batch", "categorical_bernoulli_toy"]


def _problem(name):
    if name == "categorical_bernoulli_toy":
        return CATALOGUE[name](eta=-0.7)
    return CATALOGUE[name]()


@pytest.mark.parametrize("est_name,prob_name", list(itertools.product(UNBIASED, PROBLEMS)))
def test_unbiased_on_catalogue(est_name, prob_name):
    prob = _problem(prob_name)
    params = prob.params()
    seed = 10 * PROBLEMS.index(prob_name) + list(UNBIASED).index(est_name)
    est = sg.estimate_grad(prob.f, prob.dist_fn, params, 6000, UNBIASED[est_name](), seed=seed)
    value, grad = prob.exact(params)
    assert_grad_unbiased(est, grad, what=f"{est_name} on {prob_name}")
    assert_close_in_se(est.value, value, est.value_stderr, what=f"{est_name} value")


@pytest.mark.parametrize("est_name", ["arsm", "rb_reinforce_k1", "unordered_set_k2"])
def test_unbiased_through_independent_and_probs(est_name):
    # parameters enter through probs = softmax(w), the variables wrapped in Independent
    w = torch.tensor([[0.2, -0.5, 0.9], [0.0, 0.4, -0.3]], dtype=torch.float64, requires_grad=True)
    C = torch.tensor([[1.0, -1.0, 2.0], [0.5, 0.0, -1.5]], dtype=torch.float64)

    def f(x):
        v = C[torch.arange(2), x]
        return v.prod(-1) + v[..., 0]

    def dist_fn(w):
        return D.Independent(D.Categorical(probs=torch.softmax(w, -1)), 1)

    grid = torch.cartesian_prod(torch.arange(3), torch.arange(3))
    logp = torch.log_softmax(w, -1)
    exact = (logp[0, grid[:, 0]] + logp[1, grid[:, 1]]).exp() @ f(grid)
    (g,) = torch.autograd.grad(exact, w)
    est = sg.estimate_grad(f, dist_fn, {"w": w}, 8000, UNBIASED[est_name](), seed=3)
    assert_grad_unbiased(est, {"w": g})


def test_gumbel_rao_is_biased_declared_and_measured():
    prob = CATALOGUE["categorical_table"]()
    params = prob.params()
    _, grad = prob.exact(params)
    est = sg.estimate_grad(prob.f, prob.dist_fn, params, 40_000, sg.GumbelRao(1.0), seed=0)
    z = (est.grad["logits"] - grad["logits"]) / est.stderr["logits"]
    assert sg.GumbelRao().biased is True and "biased" in est.estimator
    assert float(z.abs().max()) > Z_CRIT  # the bias is real and measurable at λ = 1
    # the value is f at the hard sample: unbiased for E[f]
    assert_close_in_se(est.value, prob.exact(params)[0], est.value_stderr, "gumbel_rao value")
    # compare reports the bias and flags it
    cmp = sg.diagnostics.compare(prob, ["gumbel_rao"], n=4000, repeats=2, seed=0)
    assert all(r["biased"] for r in cmp.rows)
    assert max(abs(r["bias_z"]) for r in cmp.rows) > Z_CRIT


def test_gumbel_rao_reduces_straight_through_variance():
    # Paulus et al. 2020, theorem 1: conditioning on the hard sample never increases variance
    prob = CATALOGUE["onehot_table"]()
    params = prob.params()
    kw = dict(seed=1, return_per_sample=True)
    st = sg.estimate_grad(prob.f, prob.dist_fn, params, 40_000, sg.StraightThrough(1.0), **kw)
    gr = sg.estimate_grad(prob.f, prob.dist_fn, params, 40_000, sg.GumbelRao(1.0, 20), **kw)
    assert torch.allclose(
        gr.grad["logits"], st.grad["logits"], atol=5 * float(st.stderr["logits"].max())
    )
    v_st = st.per_sample["logits"].var(0).sum()
    v_gr = gr.per_sample["logits"].var(0).sum()
    assert v_gr < 0.8 * v_st


def _exact_setup(eta):
    prob = CATALOGUE["categorical_bernoulli_toy"](eta=eta)
    e = torch.tensor(eta, dtype=torch.float64, requires_grad=True)
    theta = prob.dist_fn(e).logits
    J = torch.stack([torch.autograd.grad(theta[i], e, retain_graph=True)[0] for i in range(8)])
    return prob, theta.detach(), J.reshape(8, 1), prob.f(torch.arange(8)).double()


def _variance_z(units, exact):
    c = units - units.mean()
    var = (c**2).mean()
    se = ((c**4).mean() - var**2).clamp_min(0).sqrt() / math.sqrt(units.shape[0])
    return float((var - exact) / se)


@pytest.mark.parametrize(
    "name,make,exact_fn",
    [
        ("rb_k2", lambda: sg.RaoBlackwellReinforce(2, baseline=False),
         lambda f, t, J: ex.sum_and_sample(f, t, J, 2)),
        ("us_k3", lambda: sg.UnorderedSet(3), lambda f, t, J: ex.unordered_set(f, t, J, 3)),
        ("us_k3_nobl", lambda: sg.UnorderedSet(3, baseline=False),
         lambda f, t, J: ex.unordered_set(f, t, J, 3, baseline=False)),
    ],
)  # fmt: skip
def test_variance_matches_enumeration_on_the_kool_toy(name, make, exact_fn):
    prob, theta, J, f = _exact_setup(-1.0)
    mean, var = exact_fn(f, theta, J)
    est = sg.estimate_grad(
        prob.f, prob.dist_fn, prob.params(), 20_000, make(), seed=5, return_per_sample=True
    )
    units = est.per_sample["eta"].reshape(-1)
    assert abs(_variance_z(units, float(var[0]))) < Z_CRIT
    assert_close_in_se(est.grad["eta"], mean[0], est.stderr["eta"], name)


def test_variance_below_reinforce_where_the_literature_proves_it():
    # sum-and-sample is a conditional expectation of REINFORCE (Liu et al. 2019, thm 1), and the
    # unordered set estimator without baseline one of REINFORCE on the first of its draws
    # (Kool et al. 2020, thm 1): neither can have more variance per unit
    for eta in (0.0, -1.0, -4.0):
        _, theta, J, f = _exact_setup(eta)
        v_rf = float(ex.reinforce(f, theta, J)[1])
        for k in range(1, 8):
            assert float(ex.sum_and_sample(f, theta, J, k)[1]) <= v_rf * (1 + 1e-12)
            assert float(ex.unordered_set(f, theta, J, k, baseline=False)[1]) <= v_rf * (1 + 1e-12)
    # and measured, on a problem with a batch shape (the coordinate-wise form)
    prob = CATALOGUE["categorical_batch"]()
    kw = dict(seed=2, return_per_sample=True)
    rf = sg.estimate_grad(prob.f, prob.dist_fn, prob.params(), 20_000, sg.ScoreFunction(), **kw)
    for est in (sg.RaoBlackwellReinforce(1, baseline=False), sg.UnorderedSet(2, baseline=False),
                sg.ARSM()):  # fmt: skip
        e = sg.estimate_grad(prob.f, prob.dist_fn, prob.params(), 20_000, est, **kw)
        assert e.per_sample["logits"].var(0).sum() < rf.per_sample["logits"].var(0).sum(), est


def test_set_recursion_matches_all_orderings():
    g = torch.Generator().manual_seed(0)
    p = torch.softmax(torch.randn(7, generator=g, dtype=torch.float64), -1)
    S = (1, 4, 5, 6)
    log_G = log_set_recursion(torch.log(p[list(S)]))
    assert math.isclose(log_G[0].exp().item(), ex.set_probability(p, S), rel_tol=1e-12)
    rest = [v / (1 - p[4].item()) for v in p.tolist()]  # G({4}): S∖4 drawn from D∖4
    assert math.isclose(log_G[2].exp().item(), ex.set_probability(rest, (1, 5, 6)), rel_tol=1e-12)


def test_pseudo_actions_match_brute_force_swaps():
    g = torch.Generator().manual_seed(1)
    for K in (2, 3, 6):
        logits = torch.randn(50, K, generator=g, dtype=torch.float64)
        log_pi = torch.log(torch.distributions.Dirichlet(torch.ones(K)).sample((50,))).double()
        got = pseudo_actions(log_pi, logits)
        m, j = torch.triu_indices(K, K, offset=1)
        for q in range(m.shape[0]):
            swapped = log_pi.clone()
            swapped[:, m[q]], swapped[:, j[q]] = log_pi[:, j[q]], log_pi[:, m[q]]
            assert torch.equal(got[:, q], (swapped - logits).argmin(-1))


@pytest.mark.parametrize(
    "make", [lambda: sg.ARSM(), lambda: sg.RaoBlackwellReinforce(1), lambda: sg.UnorderedSet(2),
             lambda: sg.REBAR(train=False), lambda: sg.RELAX(relaxed_f=True, train=False),
             lambda: sg.GumbelRao()],
)  # fmt: skip
def test_both_doors_agree(make):
    # the same seed draws the same units through estimate_grad and expectation
    prob = CATALOGUE["categorical_batch"]()
    params = prob.params()
    est = sg.estimate_grad(prob.f, prob.dist_fn, params, 64, make(), seed=7)
    theta = params["logits"].detach().clone().requires_grad_()
    loss = sg.expectation(prob.f, prob.dist_fn(theta), 64, make(), seed=7)
    (g,) = torch.autograd.grad(loss, theta)
    assert torch.allclose(g, est.grad["logits"], atol=1e-10, rtol=1e-7)
    assert math.isclose(float(loss.detach()), float(est.value), rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize("make", [lambda: sg.ARSM(), lambda: sg.UnorderedSet(3)])
def test_expectation_with_items_is_unbiased(make):
    # 3 items (data points) of 2 variables each; f per item; gradients per item z-tested
    C = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    theta = torch.tensor([[[0.1, -0.3, 0.2, 0.0], [0.5, 0.0, -1.0, 0.3]]] * 3, dtype=torch.float64)
    theta = (theta + torch.arange(3.0, dtype=torch.float64)[:, None, None] / 4).requires_grad_()

    def f(x):  # (n, 3, 2) -> (n, 3)
        v = C[x]
        return v[..., 0] * v[..., 1] + v[..., 0]

    grid = torch.cartesian_prod(torch.arange(4), torch.arange(4))
    logp = torch.log_softmax(theta, -1)
    probs = (logp[:, 0, grid[:, 0]] + logp[:, 1, grid[:, 1]]).exp()  # (3, 16)
    (exact,) = torch.autograd.grad((probs * f(grid[:, None, :].expand(16, 3, 2)).T).sum(), theta)
    reps = []
    for r in range(300):
        th = theta.detach().clone().requires_grad_()
        loss = sg.expectation(f, D.Categorical(logits=th), 16, make(), item_shape=(3,), seed=r)
        reps.append(torch.autograd.grad(loss, th)[0])
    reps = torch.stack(reps)
    assert_close_in_se(reps.mean(0), exact, reps.std(0) / math.sqrt(300), "items")


def test_capabilities_are_declared_and_counted():
    prob = CATALOGUE["categorical_batch"]()  # V = 3 variables of K = 4
    dist = prob.dist_fn(**prob.params())
    for est in (sg.ARSM(), sg.RaoBlackwellReinforce(2), sg.UnorderedSet(3), sg.GumbelRao(),
                sg.REBAR(), sg.RELAX()):  # fmt: skip
        assert isinstance(est.biased, bool) and isinstance(est.unit, str)
        assert isinstance(est.samples_per_unit, int) and est.supports(dist) is None
        run = sg.estimate_grad(prob.f, prob.dist_fn, prob.params(), 10, est, seed=0)
        assert run.n_evals == 10 * est.evals_per_unit(dist), est
    assert sg.ARSM().evals_per_unit(dist) == 4 * 3 // 2 + 1
    assert sg.UnorderedSet(3).samples_per_unit == 3


@pytest.mark.parametrize(
    "est,dist,match",
    [
        (sg.ARSM(), D.Normal(0.0, 1.0), "Categorical"),
        (sg.UnorderedSet(5), D.Categorical(logits=torch.zeros(4)), "k ≤ 4"),
        (sg.RaoBlackwellReinforce(4), D.Categorical(logits=torch.zeros(4)), "k ≤ 3"),
        (sg.GumbelRao(), D.Bernoulli(logits=torch.zeros(2)), "Categorical"),
        (sg.RELAX(), D.Poisson(torch.ones(2)), "Bernoulli"),
    ],
)
def test_refuses_what_it_cannot_do(est, dist, match):
    assert est.supports(dist) is not None
    with pytest.raises(sg.EstimatorNotApplicable, match=match):
        sg.expectation(lambda x: x.float().reshape(x.shape[0], -1).sum(-1), dist, 4, est, seed=0)


def test_rebar_needs_f_differentiable_in_one_hot_inputs():
    prob = CATALOGUE["categorical_table"]()
    costs = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)

    def f_indices_only(x):
        return costs[x.long()] if not x.is_floating_point() else costs[x.argmax(-1)]

    with pytest.raises(sg.EstimatorNotApplicable, match="RELAX"):
        sg.estimate_grad(f_indices_only, prob.dist_fn, prob.params(), 8, sg.REBAR(), seed=0)


def test_categorical_relax_state_round_trips():
    prob = CATALOGUE["onehot_table"]()
    a = sg.RELAX(relaxed_f=True)
    sg.estimate_grad(prob.f, prob.dist_fn, prob.params(), 64, a, seed=0)  # one training step
    b = sg.RELAX(relaxed_f=True)
    sg.estimate_grad(prob.f, prob.dist_fn, prob.params(), 64, b, seed=9)  # build b's network
    b.load_state_dict(a.state_dict())
    ea = sg.estimate_grad(prob.f, prob.dist_fn, prob.params(), 64, a, seed=1)
    eb = sg.estimate_grad(prob.f, prob.dist_fn, prob.params(), 64, b, seed=1)
    assert torch.equal(ea.grad["logits"], eb.grad["logits"])


def test_coordinatewise_points_are_built_in_bounded_blocks(monkeypatch):
    # the V² points per draw are built and evaluated in blocks: same result, bounded memory
    import scoregrad.estimators._categorical as C

    prob = CATALOGUE["categorical_batch"]()
    whole = sg.estimate_grad(prob.f, prob.dist_fn, prob.params(), 300, sg.UnorderedSet(2), seed=0)
    monkeypatch.setattr(C, "CHUNK_ELEMENTS", 100)
    calls = []
    f = lambda x: calls.append(x.shape[0]) or prob.f(x)  # noqa: E731
    blocks = sg.estimate_grad(f, prob.dist_fn, prob.params(), 300, sg.UnorderedSet(2), seed=0)
    assert torch.equal(whole.grad["logits"], blocks.grad["logits"])
    assert max(calls) == 3 * 2 and blocks.n_evals == 1800  # one draw: V·k points per block


def test_gumbel_rao_with_a_zero_probability_category():
    """A -inf logit (a category of probability 0, e.g. a mask): its conditional Gumbel is -inf
    and its relaxed weight 0, not NaN (-inf - (-inf)) handed to f; the estimate is that of a
    logit of -50 (same seed) up to e^-50."""
    c = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    out = {}
    for low in (-math.inf, -50.0):
        th = torch.tensor([low, 0.3, -0.2], dtype=torch.float64, requires_grad=True)
        est = sg.estimate_grad(lambda x: (x * c).sum(-1), lambda th: D.OneHotCategorical(logits=th),
                               {"th": th}, n=2000, estimator=sg.GumbelRao(), seed=0)  # fmt: skip
        out[low] = est.grad["th"]
    assert torch.isfinite(out[-math.inf]).all()
    assert torch.allclose(out[-math.inf], out[-50.0], atol=1e-15)
