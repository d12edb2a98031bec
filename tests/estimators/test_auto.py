"""``Auto`` (estimator="auto"): unbiased whatever it picks, reproducible for a seed with
cost="evals", biased estimators only when allowed, clear refusals, a complete report, state that
round-trips, a bounded pilot share in training loops, and ``scoregrad compare --auto``."""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.distributions as D

import scoregrad as sg
from scoregrad import problems
from scoregrad.testing import Z_CRIT, assert_grad_unbiased, mean_z


@pytest.mark.parametrize(
    "name", ["normal_square", "bernoulli_toy", "categorical_table", "poisson_polynomial",
             "gamma_x_log_x"],
)  # fmt: skip
def test_auto_is_unbiased_on_catalogue_problems(name):
    prob = problems.get(name)
    params = prob.params()
    _, exact = prob.exact(params)
    est = sg.estimate_grad(prob.f, prob.dist_fn, params, n=40_000,
                           estimator=sg.Auto(cost="evals"), seed=3)  # fmt: skip
    assert_grad_unbiased(est, exact, f"{name}: {est.auto.choice}")
    assert est.auto.pilot_share <= 0.1
    assert est.n_evals <= 40_000


def test_auto_string_resolves_in_both_doors():
    mu = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    est = sg.estimate_grad(lambda x: x**2, lambda mu: D.Normal(mu, 1.0), {"mu": mu}, n=5000,
                           estimator="auto", seed=0)  # fmt: skip
    assert isinstance(est.auto, sg.AutoReport) and est.estimator.startswith("Auto(")
    loss = sg.expectation(lambda x: x**2, D.Normal(mu, 1.0), n=16, estimator="auto", seed=0)
    loss.backward()
    assert mu.grad is not None and torch.isfinite(mu.grad)


def test_same_seed_same_choice_and_estimate_with_evals_cost():
    prob = problems.get("bernoulli_toy", logits=(0.3, -0.5, 1.0))
    runs = []
    for _ in range(2):
        params = prob.params()
        est = sg.estimate_grad(prob.f, prob.dist_fn, params, n=8000,
                               estimator=sg.Auto(cost="evals"), seed=11)  # fmt: skip
        runs.append(est)
    a, b = runs
    assert a.auto.choice == b.auto.choice
    assert torch.equal(a.grad["logits"], b.grad["logits"])
    strip = lambda r: {k: v for k, v in r.as_dict().items() if k != "seconds"}  # noqa: E731
    assert [strip(r) for r in a.auto.rows] == [strip(r) for r in b.auto.rows]


def test_biased_estimators_only_when_allowed():
    prob = problems.get("categorical_table")
    params = prob.params()
    est = sg.estimate_grad(prob.f, prob.dist_fn, params, n=4000, estimator=sg.Auto(), seed=0)
    assert all(not r.biased for r in est.auto.rows)
    assert any("biased" in why for why in est.auto.skipped.values())
    allowed = sg.Auto(allow_biased=True, differentiable=True)
    est = sg.estimate_grad(prob.f, prob.dist_fn, params, n=4000, estimator=allowed, seed=0)
    assert any(r.biased for r in est.auto.rows) or not any(
        "biased" in why for why in est.auto.skipped.values()
    )
    assert allowed.biased and not sg.Auto().biased


def test_pathwise_needs_a_differentiable_f():
    mu = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)

    def black_box(x):  # NumPy inside: not differentiable torch code
        return torch.as_tensor((x.detach().numpy() - 1.0) ** 2)

    est = sg.estimate_grad(black_box, lambda mu: D.Normal(mu, 1.0), {"mu": mu}, n=5000,
                           estimator="auto", seed=0)  # fmt: skip
    assert "Pathwise()" in est.auto.skipped
    est = sg.estimate_grad(lambda x: (x - 1.0) ** 2, lambda mu: D.Normal(mu, 1.0), {"mu": mu},
                           n=5000, estimator="auto", seed=0)  # fmt: skip
    assert "Pathwise()" in [r.estimator for r in est.auto.rows]


def test_no_candidate_is_refused_naming_alternatives():
    theta = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    only_biased = sg.Auto(candidates=[sg.GumbelSoftmax()])
    with pytest.raises(sg.EstimatorNotApplicable) as info:
        sg.estimate_grad(lambda b: b, lambda t: D.Bernoulli(logits=t), {"t": theta}, n=1000,
                         estimator=only_biased, seed=0)  # fmt: skip
    message = str(info.value)
    assert "allow_biased=True" in message and "score_function" in message
    with pytest.raises(sg.ScoregradError):
        sg.Auto(cost="seconds")
    with pytest.raises(sg.ScoregradError):
        sg.Auto(pilot_share=0.9)
    # the user's own candidates, none of which applies: each named with its reason
    with pytest.raises(sg.EstimatorNotApplicable, match=r"none of its candidates.*Pathwise\(\)"):
        sg.estimate_grad(lambda b: b, lambda t: D.Bernoulli(logits=t), {"t": theta}, n=1000,
                         estimator=sg.Auto(candidates=[sg.Pathwise()]), seed=0)  # fmt: skip


@pytest.mark.parametrize("kwargs, words", [
    ({"z": -1.0}, "positive number"), ({"z": float("nan")}, "positive number"),
    ({"tolerance": 0.5}, "at least 1"), ({"pilot_share": "0.1"}, "(0, 0.5]"),
    ({"differentiable": "no"}, "True or False"), ({"allow_biased": 1}, "True or False"),
    ({"candidates": [sg.Auto(), sg.ScoreFunction()]}, "cannot be one of its own"),
])  # fmt: skip
def test_options_are_checked_where_auto_is_built(kwargs, words):
    """Options that would silently change the choice (a negative z makes every candidate
    "clearly better"; differentiable="no" is truthy) are refused with the option's name."""
    with pytest.raises(sg.errors.ArgumentError, match=re.escape(words)):
        sg.Auto(**kwargs)


def test_report_contents():
    prob = problems.get("normal_square", k=0.0)
    params = prob.params()
    est = sg.estimate_grad(prob.f, prob.dist_fn, params, n=20_000,
                           estimator=sg.Auto(differentiable=False), seed=2)  # fmt: skip
    rep = est.auto
    assert rep.choice in {r.estimator for r in rep.rows}
    assert [r.status for r in rep.rows].count("chosen") == 1
    assert rep.cost == "time" and rep.total_evals == est.n_evals
    assert 0 < rep.pilot_evals <= 0.1 * 20_000
    assert "ScoreFunction(NoBaseline())" in {r.estimator for r in rep.rows}
    for r in rep.rows:
        if r.units:
            assert r.variance >= 0 and r.cost > 0 and r.evals >= r.units
    assert "choice:" in rep.table() and rep.as_dict()["pilot_share"] == rep.pilot_share


def test_small_budget_falls_back_to_the_default():
    mu = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    est = sg.estimate_grad(lambda x: x**2, lambda mu: D.Normal(mu, 1.0), {"mu": mu}, n=50,
                           estimator="auto", seed=0)  # fmt: skip
    assert est.auto.choice == "ScoreFunction(NoBaseline())" and est.auto.pilot_evals <= 2
    assert est.n_evals <= 50


def test_clearly_better_candidate_is_chosen():
    """Bernoulli toy with t near 1/2: f barely varies, so any baseline beats none by far."""
    prob = problems.get("bernoulli_toy", t=0.49, logits=(0.2, -0.4, 0.6, 0.1))
    est = sg.estimate_grad(prob.f, prob.dist_fn, prob.params(), n=20_000,
                           estimator=sg.Auto(cost="evals"), seed=0)  # fmt: skip
    assert est.auto.choice != "ScoreFunction(NoBaseline())", est.auto.table()


@pytest.mark.parametrize("n", [2, 7, 100])
def test_a_budget_without_room_for_a_pilot_runs_the_default_on_all_of_n(n):
    """n too small for a pilot of two candidates: the score function gets every evaluation (no
    probe of f's differentiability spends two of them; at n = 2 that left none and raised), and
    the report says why pathwise was not considered. Unbiased: the mean of 200 seeds' estimates
    is within 4.42 standard errors of the exact gradient (false alarm < 1e-5 per component)."""
    prob = problems.get("normal_square")
    ests = [sg.estimate_grad(prob.f, prob.dist_fn, prob.params(), n=n, estimator=sg.Auto(),
                             seed=s) for s in range(200)]  # fmt: skip
    first = ests[0]
    assert first.n_evals == n and first.auto.pilot_evals == 0
    assert first.auto.choice == "ScoreFunction(NoBaseline())"
    assert "no room for a pilot" in first.auto.skipped["Pathwise()"]
    _, exact = prob.exact(prob.params())
    for k, g in exact.items():
        est = torch.stack([e.grad[k] for e in ests])
        z = (est.mean(0) - g.detach()) / (est.std(0) / len(ests) ** 0.5)
        assert bool((z.abs() < Z_CRIT).all()), (k, z)


def test_expectation_door_chooses_a_clearly_better_candidate():
    """The expectation door's pilot rows are call means (8 calls of a few units each): a
    candidate is judged by the units behind its rows, not by the number of rows, or no candidate
    ever reaches ``ELIM_ROWS`` and the default is kept whatever the gap (here the score function's
    variance is ~10⁴ × pathwise's: E[(x - 0.3)²] over 50 coordinates)."""
    mu = torch.zeros(50, dtype=torch.float64, requires_grad=True)
    for seed in range(3):
        auto = sg.Auto(cost="evals")
        sg.expectation(lambda x: ((x - 0.3) ** 2).sum(-1), D.Normal(mu, 1.0), n=32,
                       estimator=auto, seed=seed)  # fmt: skip
        assert auto.report.choice == "Pathwise()", auto.report.table()


def test_expectation_door_revisits_with_a_bounded_share():
    theta = torch.tensor([0.2, -0.4, 0.6], dtype=torch.float64, requires_grad=True)
    auto = sg.Auto(cost="evals", revisit_every=50)
    opt = torch.optim.SGD([theta], lr=0.05)
    f = lambda b: ((b - 0.45) ** 2).sum(-1)  # noqa: E731
    for step in range(150):  # three whole cycles: each pilot's share is of the calls it serves
        opt.zero_grad()
        loss = sg.expectation(f, D.Bernoulli(logits=theta), n=16, estimator=auto, seed=step)
        loss.backward()
        opt.step()
    rep = auto.report
    assert rep.revisits == 2  # pilots at calls 1, 51 and 101
    assert rep.pilot_share <= 0.1 + 1e-9, rep.table()
    assert torch.isfinite(theta).all()


def test_expectation_door_second_round_runs_each_surrogate_alone():
    """A long cycle (revisit_every=1000) leaves the pilot a second round in which score
    functions that draw alike survive together; each surrogate call is its own (their draws are
    not shared in this door), so they run one by one, and the loop stays unbiased. This raised a
    ValueError: the screen's seconds overwrote the flag that says whether draws are shared."""
    prob = problems.get("normal_exp")
    params = {k: v.requires_grad_() for k, v in prob.params(torch.float64).items()}
    auto = sg.Auto(cost="evals", revisit_every=1000)
    grads = []
    for s in range(300):
        loss = sg.expectation(prob.f, prob.dist_fn(**params), n=64, estimator=auto, seed=s)
        grads.append(torch.stack(torch.autograd.grad(loss, list(params.values()))))
    survivors = [r for r in auto.report.rows if r.status in ("kept", "chosen")]
    assert sum(r.estimator.startswith("ScoreFunction(") for r in survivors) >= 2
    assert auto.report.revisits == 0  # one pilot served the 300 calls
    g = torch.stack(grads)
    _, exact = prob.exact(params)
    z = (g.mean(0) - torch.stack(list(exact.values())).detach()) / (g.std(0) / len(grads) ** 0.5)
    assert bool((z.abs() < Z_CRIT).all()), z  # |z| < 4.42 per component: false alarm < 1e-5


def test_expectation_door_is_unbiased():
    theta = torch.tensor([0.2, -0.4], dtype=torch.float64, requires_grad=True)
    f = lambda b: ((b - 0.3) ** 2).sum(-1)  # noqa: E731
    grads = []
    auto = sg.Auto(cost="evals", revisit_every=100)
    for r in range(400):
        loss = sg.expectation(f, D.Bernoulli(logits=theta), n=16, estimator=auto, seed=r)
        (g,) = torch.autograd.grad(loss, theta)
        grads.append(g)
    g = torch.stack(grads)
    p = torch.sigmoid(theta.detach())
    exact = p * (1 - p) * ((1 - 0.3) ** 2 - 0.3**2)
    se = g.std(0) / len(grads) ** 0.5
    # |z| < 4.42, or equal up to rounding where the choice is exact (measure-valued: se = 0)
    assert bool(((g.mean(0) - exact).abs() < 4.42 * se + 1e-12).all()), (g.mean(0), exact, se)


def test_state_round_trip_in_a_training_loop():
    import io

    theta0 = torch.tensor([0.2, -0.4, 0.6], dtype=torch.float64)
    f = lambda b: ((b - 0.45) ** 2).sum(-1)  # noqa: E731

    def step(auto, s):
        theta = theta0.clone().requires_grad_()
        loss = sg.expectation(f, D.Bernoulli(logits=theta), n=16, estimator=auto, seed=s)
        return torch.autograd.grad(loss, theta)[0]

    auto = sg.Auto(cost="evals", revisit_every=5)
    for s in range(7):
        step(auto, s)
    buf = io.BytesIO()
    torch.save(auto.state_dict(), buf)
    buf.seek(0)
    fresh = sg.Auto(cost="evals", revisit_every=5)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    for s in range(7, 12):  # crosses a revisit
        assert torch.equal(step(auto, s), step(fresh, s))


def test_compare_auto_cli(tmp_path):
    import typer
    from typer.testing import CliRunner

    from scoregrad.diagnostics.cli import register

    app = typer.Typer()
    register(app)
    res = CliRunner().invoke(app, [
        "compare", "bernoulli-toy", "-e", "score-function,disarm", "--auto", "--auto-cost",
        "evals", "--n", "4000", "--repeats", "2", "--json", str(tmp_path / "c.json"),
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "auto chose" in res.output and "pilot" in res.output
    import json

    data = json.loads((tmp_path / "c.json").read_text())
    assert len(data["choices"]["auto"]) == 2
    assert {r["estimator"] for r in data["rows"]} == {"score_function", "disarm", "auto"}


def test_docs_example_runs():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "estimators.md").read_text()
    section = text.split('## Letting a pilot choose: `estimator="auto"`', 1)[1]
    block = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    exec(compile(block, "docs/estimators.md", "exec"), {})


def _race_setup():
    from scoregrad.baselines import LeaveOneOut
    from scoregrad.estimators.score_function import ScoreFunction

    def auto():  # two close candidates of different kin (leave-one-out score function and
        # pathwise; variances per unit 0.58 and 0.56): the screen cannot tell them apart, so
        # they race
        return sg.Auto(cost="evals", candidates=[
            ScoreFunction(LeaveOneOut()), ScoreFunction(), sg.Pathwise()])  # fmt: skip

    f = lambda x: torch.sin(1.2 * x)  # noqa: E731
    # d/dμ E sin(cx) for x ~ N(μ = 0.7, 1): c cos(cμ) e^{-c²/2}
    exact = 1.2 * math.cos(1.2 * 0.7) * math.exp(-0.72)
    return auto, f, exact


def test_counted_race_is_unbiased_and_its_stderr_calibrated():
    """400 seeds of an estimate whose race chunks count (weights fixed before each chunk): the
    mean is unbiased (|z| < Z_CRIT) and the mean reported variance matches the spread of the
    estimates (their ratio within Z_CRIT of 1 at the Gaussian sd √(2/(R-1)) of a variance)."""
    auto, f, exact = _race_setup()
    est, se2, raced = [], [], 0
    for seed in range(400):
        mu = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
        e = sg.estimate_grad(f, lambda mu: D.Normal(mu, 1.0), {"mu": mu}, n=3000,
                             estimator=auto(), seed=seed)  # fmt: skip
        est.append(float(e.grad["mu"]))
        se2.append(float(e.stderr["mu"]) ** 2)
        raced += bool(e.auto.race)
        assert e.n_evals <= 3000 and e.auto.total_evals == e.n_evals
    est, se2 = torch.tensor(est, dtype=torch.float64), torch.tensor(se2, dtype=torch.float64)
    assert raced > 100  # the race ran, and counted, in many seeds (the rest the screen settled)
    assert abs(float(mean_z(est[:, None], torch.tensor([exact])))) < Z_CRIT
    ratio = float(se2.mean() / est.var())
    assert abs(ratio - 1) < Z_CRIT * math.sqrt(2 / 399), ratio


def test_race_reports_its_chunks_and_skips_when_rows_are_kept():
    auto, f, _ = _race_setup()
    mu = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    e = sg.estimate_grad(f, lambda mu: D.Normal(mu, 1.0), {"mu": mu}, n=3000, estimator=auto(),
                         seed=0)  # fmt: skip
    labels = {r.estimator for r in e.auto.rows}
    assert e.auto.race and all(label in labels and k > 0 for label, k in e.auto.race)
    assert sum(k for _, k in e.auto.race) <= 0.2 * 3000 + 3
    # per-sample rows must be i.i.d. draws: no race, whose rows carry a weighted mean
    e = sg.estimate_grad(f, lambda mu: D.Normal(mu, 1.0), {"mu": mu}, n=3000, estimator=auto(),
                         seed=0, return_per_sample=True)  # fmt: skip
    assert e.auto.race == []
    assert e.per_sample["mu"].shape[0] == e.n - e.auto.pilot_evals  # the final run's own rows


def test_pilot_variance_per_unit_is_right_for_blocked_units():
    """Antithetic pairs give one row per block of two units; the pilot's variance per unit must
    be the pair-mean variance × 2, i.e. what n × stderr² of the estimator alone says (|z| < Z_CRIT
    with both standard errors)."""
    from scoregrad.baselines import LeaveOneOut
    from scoregrad.estimators.score_function import ScoreFunction
    from scoregrad.sampling import Antithetic

    anti = ScoreFunction(baseline=LeaveOneOut(), sampler=Antithetic())
    f = lambda x: torch.cos(3 * x) + x  # noqa: E731
    mu = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    dist_fn = lambda mu: D.Normal(mu, 1.0)  # noqa: E731
    alone = sg.estimate_grad(f, dist_fn, {"mu": mu}, n=200_000, estimator=anti, seed=1)
    v_alone = float(alone.stderr["mu"]) ** 2 * 200_000
    est = sg.estimate_grad(f, dist_fn, {"mu": mu}, n=400_000, seed=2,
                           estimator=sg.Auto(cost="evals", candidates=[anti, ScoreFunction()]))  # fmt: skip
    row = next(r for r in est.auto.rows if r.estimator == repr(anti))
    se = math.hypot(row.variance_se, v_alone * math.sqrt(2 / 100_000))
    assert abs(row.variance - v_alone) < Z_CRIT * se, (row.variance, v_alone, se)


def test_shortlist_holds_one_per_kin():
    """Score functions weigh f alike and err together, whatever their sampler, so the race's
    slots go to independent views: of the four such candidates (the reference among them, and an
    antithetic one of another draw) only the best races, beside the next kin (pathwise); the
    reference, beaten on its own draw, does not."""
    from scoregrad.baselines import LeaveOneOut
    from scoregrad.control_variates import ScoreControlVariate
    from scoregrad.estimators.auto.pilot import Pilot
    from scoregrad.estimators.score_function import ScoreFunction
    from scoregrad.sampling import Antithetic

    gen = torch.Generator().manual_seed(0)
    family = [ScoreFunction(LeaveOneOut()), ScoreFunction(control_variate=ScoreControlVariate()),
              ScoreFunction(LeaveOneOut(), sampler=Antithetic())]  # fmt: skip
    pathwise, reference = sg.Pathwise(), ScoreFunction()
    pilots = []
    for est, scale in [(family[0], 1.0), (family[1], 1.05), (family[2], 1.1), (pathwise, 1.2),
                       (reference, 1.5)]:  # fmt: skip
        p = Pilot(est, 1, 1, 10_000, 1)
        p.add(scale * torch.randn(400, 1, generator=gen, dtype=torch.float64), 1, 400, 0.0, 400)
        pilots.append(p)
    lead = sg.Auto(cost="evals")._shortlist(pilots, pilots[4])
    assert lead is pilots[0]
    assert [p.alive for p in pilots] == [True, False, False, True, False]
    assert pilots[1].status == pilots[2].status == "not shortlisted"
    assert pilots[4].status == "beaten on its own draw"


def test_timed_shortlist_does_not_drop_a_candidate_on_timing_noise():
    """With cost="time" the screen's CPU time per unit is one small call each, mostly overhead,
    good to ``TIME_NOISE`` only: a candidate the leader beats by 1.25× in evaluations but trails
    by 16% in screen time (two exact estimators, equal variance) still races, to have its cost
    measured at a larger size; one behind the leader in both views by far more does not."""
    from scoregrad.estimators.auto.pilot import Pilot

    gen = torch.Generator().manual_seed(0)
    rows = torch.randn(400, 1, generator=gen, dtype=torch.float64)
    cands = [(sg.UnorderedSet(k=4), 4, 0.76), (sg.MeasureValued(), 5, 0.64),
             (sg.DisARM(), 8, 3.0)]  # fmt: skip
    pilots = []
    for est, evals, ms in cands:
        p = Pilot(est, evals, 1, 10_000, 1)
        p.add(rows.clone(), 1, 400, ms * 1e-3, evals * 400)
        pilots.append(p)
    lead = sg.Auto(cost="time")._shortlist(pilots, None)
    assert lead is pilots[0]
    assert [p.alive for p in pilots] == [True, True, False]
    assert pilots[2].status == "not shortlisted"


@pytest.mark.parametrize("name", ["bernoulli_toy", "categorical_table"])
def test_a_rao_blackwellised_candidate_leaves_out_what_it_conditions(name):
    """DisARM declares it Rao-Blackwellises ARM: Auto leaves ARM out beside it (and keeps it when
    it is not there), and the declaration holds as a statistic: DisARM's variance per pair is
    not above ARM's (one-sided, 4.42 standard errors of the ratio: a false alarm well below 1e-4).
    """
    prob = problems.get(name)
    params = prob.params(torch.float64)
    est = sg.estimate_grad(prob.f, prob.dist_fn, params, n=4000, estimator=sg.Auto(cost="evals"),
                           seed=0)  # fmt: skip
    assert "Rao-Blackwellises" in est.auto.skipped["ARM()"]
    assert "ARM()" not in {r.estimator for r in est.auto.rows}
    alone = sg.Auto(cost="evals", candidates=[sg.ARM(), sg.ScoreFunction()])
    est = sg.estimate_grad(prob.f, prob.dist_fn, params, n=4000, estimator=alone, seed=0)
    assert "ARM()" in {r.estimator for r in est.auto.rows}
    n = 20_000
    v = {}
    for e in (sg.ARM(), sg.DisARM()):
        out = sg.estimate_grad(prob.f, prob.dist_fn, params, n=n, estimator=e, seed=1,
                               return_per_sample=True)  # fmt: skip
        rows = torch.cat([g.reshape(n, -1) for g in out.per_sample.values()], 1)
        d = ((rows - rows.mean(0)) ** 2).sum(1)
        v[repr(e)] = (float(d.mean()), float(d.std()) / math.sqrt(n))
    (va, sa), (vd, sd) = v["ARM()"], v["DisARM()"]
    assert vd <= va + Z_CRIT * math.hypot(sa, sd), v


def test_members_of_a_shared_draw_are_charged_what_each_costs_alone():
    """One draw serves the score function's configurations in the screen; each is charged the
    shared part of the call and its own work (``contributions_shared(seconds=...)``), not the
    whole call: a control variate's fit costs it alone, not its siblings."""
    import time

    from scoregrad.estimators.score_function import ScoreFunction

    class Tagged(ScoreFunction):  # one draw for both; the sibling's weighing burns 50 ms of CPU
        def __init__(self, tag):
            super().__init__()
            self.tag = tag

        def _weigh(self, *args):
            t0 = time.process_time()
            while self.tag == "Sibling()" and time.process_time() - t0 < 0.05:
                pass
            return super()._weigh(*args)

        def __repr__(self):
            return self.tag

    auto = sg.Auto(candidates=[Tagged("Slow()"), Tagged("Sibling()")])
    mu = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    est = sg.estimate_grad(lambda x: x**2, lambda mu: D.Normal(mu, 1.0), {"mu": mu}, n=20_000,
                           estimator=auto, seed=0)  # fmt: skip
    secs = {r.estimator: r.seconds for r in est.auto.rows}
    assert secs["Sibling()"] >= 0.05 > secs["Slow()"], secs


def test_a_fresh_process_does_not_charge_its_one_time_costs_to_the_first_candidate():
    """torch's first autograd.grad imports modules (about 0.5 s); a timed screen in a fresh
    process charged them to the score function, which runs first, and read it as 20× slower.
    Auto pays them before it times anything."""
    import json
    import subprocess
    import sys

    code = (
        "import json, torch, torch.distributions as D, scoregrad as sg\n"
        "mu = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)\n"
        "e = sg.estimate_grad(lambda x: x**2, lambda mu: D.Normal(mu, 1.0), {'mu': mu},\n"
        "                     n=20000, estimator=sg.Auto(cost='time'), seed=0)\n"
        "print(json.dumps({r.estimator: r.cost for r in e.auto.rows}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    cost = json.loads(out.stdout.strip().splitlines()[-1])
    assert cost["ScoreFunction(NoBaseline())"] < 5 * cost["Pathwise()"], cost


def test_a_prepared_loop_reuses_the_choice_and_revisits_it():
    """One Auto across the calls of a prepared estimate: a pilot at calls 1 and 1 + revisit_every,
    the chosen estimator on the whole budget in between (no pilot), and the pilot's share falling
    over the calls it serves."""
    prob = problems.get("normal_square", k=3.0)
    params = prob.params(torch.float64)
    auto = sg.Auto(cost="evals", revisit_every=4)
    grad_of = sg.prepare(prob.f, prob.dist_fn, params, n=4000, estimator=auto)
    reports = [grad_of(params, seed=s).auto for s in range(9)]
    assert [r.calls for r in reports] == [1, 2, 3, 4, 1, 2, 3, 4, 1]
    assert [r.revisits for r in reports] == [0, 0, 0, 0, 1, 1, 1, 1, 2]
    first = reports[0]
    assert first.pilot_evals > 0 and reports[1].pilot_evals == first.pilot_evals
    assert reports[3].total_evals == first.total_evals + 3 * 4000  # reused calls: n each
    assert reports[3].pilot_share < first.pilot_share / 3
    assert reports[0].total_evals == 4000  # (the reports of earlier calls are not changed)


def test_reused_choices_are_unbiased():
    """The estimates of calls that reuse a choice, against the exact gradient (|z| < Z_CRIT per
    component: a false alarm once in 1e5 runs)."""
    prob = problems.get("bernoulli_toy", logits=(0.3, -0.5, 1.0))
    params = prob.params(torch.float64)
    auto = sg.Auto(cost="evals", revisit_every=1000)
    grad_of = sg.prepare(prob.f, prob.dist_fn, params, n=64, estimator=auto)
    grad_of(params, seed=0)  # the pilot's call
    rows = torch.stack([grad_of(params, seed=s).grad["logits"] for s in range(1, 301)])
    _, exact = prob.exact(params)
    assert auto.report.calls == 301
    spread = rows.std(0)
    if bool((spread == 0).all()):  # an exact choice (measure-valued, DisARM on one bit each)
        assert torch.allclose(rows.mean(0), exact["logits"], rtol=1e-9, atol=1e-12)
    else:
        assert bool((mean_z(rows, exact["logits"]).abs() < Z_CRIT).all())


def test_one_shot_calls_and_another_problem_run_their_own_pilot():
    """A one-shot call is its own call site (``compare``'s repeats stay independent runs of Auto);
    in a prepared estimate, another f or other shapes pilot at once."""
    prob = problems.get("normal_square", k=3.0)
    params = prob.params(torch.float64)
    auto = sg.Auto(cost="evals")
    for s in range(3):
        est = sg.estimate_grad(prob.f, prob.dist_fn, params, n=4000, estimator=auto, seed=s)
        assert est.auto.calls == 1 and est.auto.pilot_evals > 0
    grad_of = sg.prepare(prob.f, prob.dist_fn, params, n=4000, estimator=auto)
    assert [grad_of(params, seed=s).auto.calls for s in range(2)] == [1, 2]
    single = {k: v.float() for k, v in params.items()}  # another dtype: a rebuild
    assert grad_of(single, seed=2).auto.calls == 1 and grad_of.rebuilds == 1
    other = sg.prepare(lambda x: prob.f(x), prob.dist_fn, params, n=4000, estimator=auto)
    assert other(params, seed=3).auto.calls == 1


def test_state_round_trip_in_an_estimate_grad_loop():
    import io

    prob = problems.get("bernoulli_toy", logits=(0.3, -0.5, 1.0))
    params = prob.params(torch.float64)

    def prepared(auto):
        return sg.prepare(prob.f, prob.dist_fn, params, n=2000, estimator=auto)

    auto = sg.Auto(cost="evals", revisit_every=5)
    grad_of = prepared(auto)
    for s in range(3):
        grad_of(params, seed=s)
    buf = io.BytesIO()
    torch.save(auto.state_dict(), buf)
    buf.seek(0)
    fresh = sg.Auto(cost="evals", revisit_every=5)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    resumed = prepared(fresh)  # (a resumed loop prepares its estimate again)
    a = [grad_of(params, seed=s) for s in range(3, 9)]  # crosses a revisit
    b = [resumed(params, seed=s) for s in range(3, 9)]
    assert [e.auto.calls for e in a] == [e.auto.calls for e in b] == [4, 5, 1, 2, 3, 4]
    for x, y in zip(a, b):
        assert torch.equal(x.grad["logits"], y.grad["logits"])
        assert x.auto.as_dict() == {**y.auto.as_dict(), "pilot_seconds": x.auto.pilot_seconds,
                                    "rows": x.auto.as_dict()["rows"]}  # fmt: skip


def test_a_streamed_estimate_pilots_on_the_whole_budget():
    """chunk_size=10⁴ for n=2·10⁵: the pilot takes pilot_share of the whole n, at most half the
    first chunk; it took 10% of the chunk, too little to tell pathwise from the default on
    (x - 1)² (the default in 3 of 10 seeds there, against 0 of 10 now; at chunk_size=2000, 10 of
    10 against 4 of 10). At this seed it picks pathwise, stays within its share of the
    estimate, and the streamed estimate is unbiased (|z| < 4.42)."""
    prob = problems.get("normal_square", k=0.0)
    params = prob.params()
    est = sg.estimate_grad(prob.f, prob.dist_fn, params, n=200_000, chunk_size=10_000,
                           estimator=sg.Auto(cost="evals"), seed=3)  # fmt: skip
    rep = est.auto
    assert rep.choice == "Pathwise()", rep.table()
    assert 2_000 < rep.pilot_evals <= 5_000 and rep.pilot_share <= 0.1
    assert_grad_unbiased(est, prob.exact(params)[1])


def test_a_skipped_candidate_is_given_the_distributions_reason_first():
    """Pathwise on a Bernoulli fails twice (no rsample, and the probe of f, which needs one,
    cannot show f differentiable): the report names the distribution's reason, the one that
    holds whatever f is."""
    prob = problems.get("bernoulli_toy")
    est = sg.estimate_grad(prob.f, prob.dist_fn, prob.params(), n=2000,
                           estimator=sg.Auto(cost="evals"), seed=0)  # fmt: skip
    assert "no reparameterised sampler" in est.auto.skipped["Pathwise()"]
