"""The fit loop: exact resume from checkpoints, variance logging that leaves training unchanged,
schedules, time budgets, divergence and bad-checkpoint errors, and the PNG curves."""

import pytest
import torch

import scoregrad as sg
from scoregrad.vi import MeanFieldNormal, ScoreFunctionELBO, fit, plot_history
from scoregrad.vi.models.normal_normal import NormalNormal
from scoregrad.vi.training import make_schedule


def _setup():
    model = NormalNormal(dim=3)
    guide = MeanFieldNormal(3)
    est = ScoreFunctionELBO(sg.ScoreFunction(sg.baselines.MovingAverage(0.8)))  # has state
    return model, guide, est


def _run(path, steps, stop_at=None, grad_var_every=0):
    model, guide, est = _setup()

    class Crash(Exception):
        pass

    def cb(step, history):
        if stop_at is not None and step + 1 == stop_at:
            raise Crash

    try:
        res = fit(
            lambda s: est(model, guide, 4),
            guide,
            steps,
            lr=0.05,
            schedule="cosine",
            stateful=[est],
            seed=3,
            checkpoint=path,
            checkpoint_every=5,
            progress=False,
            callback=cb,
            grad_var_every=grad_var_every,
            grad_var_repeats=3,
        )
    except Crash:
        return guide, None
    return guide, res


def test_interrupted_run_resumes_exactly(tmp_path):
    full, res_full = _run(tmp_path / "a.pt", 30)
    part, _ = _run(tmp_path / "b.pt", 30, stop_at=18)  # crashes after step 18; last ckpt at 15
    state = torch.load(tmp_path / "b.pt", weights_only=True)
    assert state["step"] == 15
    resumed, res = _run(tmp_path / "b.pt", 30)
    assert res.resumed_from == 15
    for a, b in zip(full.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)
    assert res.history["elbo"] == res_full.history["elbo"]
    assert len(res.history["elbo"]) == 30


def test_variance_probes_do_not_change_the_trajectory(tmp_path):
    g0, r0 = _run(None, 20)
    g1, r1 = _run(None, 20, grad_var_every=5)
    assert r1.history["grad_var_step"] == [0, 5, 10, 15]
    assert all(v > 0 for v in r1.history["grad_var"])
    for a, b in zip(g0.parameters(), g1.parameters(), strict=True):
        assert torch.equal(a, b)


def test_time_budget_stops_early_and_checkpoints(tmp_path):
    model, guide, est = _setup()
    res = fit(
        lambda s: est(model, guide, 4),
        guide,
        10**6,
        time_budget=0.2,
        progress=False,
        checkpoint=tmp_path / "c.pt",
    )
    assert 0 < res.steps < 10**6
    assert torch.load(tmp_path / "c.pt", weights_only=True)["step"] == res.steps


def test_schedules():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sch = make_schedule("cosine", opt, 10)
    for _ in range(10):
        opt.step()
        sch.step()
    assert opt.param_groups[0]["lr"] < 1e-6
    with pytest.raises(sg.ScoregradError, match="unknown learning-rate schedule"):
        make_schedule("bogus", opt, 10)


def test_divergence_is_reported():
    guide = MeanFieldNormal(1)
    with pytest.raises(sg.ScoregradError, match="diverged"):
        fit(
            lambda s: ScoreFunctionELBO()(lambda z: -1e30 * z.pow(2).sum(-1), guide, 4),
            guide,
            50,
            optimizer="sgd",
            lr=1.0,
            progress=False,
        )


def test_damaged_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"step": 3, "module": {"wrong": torch.zeros(1)}}, path)
    model, guide, est = _setup()
    with pytest.raises(sg.ScoregradError, match="could not resume"):
        fit(lambda s: est(model, guide, 4), guide, 5, checkpoint=path, progress=False)


def test_plot_history_writes_png(tmp_path):
    _, res = _run(None, 10, grad_var_every=5)
    out = plot_history(res.history, tmp_path / "curve.png", title="t")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nvil_run_with_a_lazily_built_baseline_resumes_exactly(tmp_path):
    """Learned() builds its network from the first context; a checkpoint must bring it back."""
    context = torch.linspace(-1, 1, 8).reshape(4, 2)

    class Crash(Exception):
        pass

    def run(path, stop_at=None):
        model, guide = NormalNormal(dim=3), MeanFieldNormal(3)
        est = ScoreFunctionELBO(sg.ScoreFunction(sg.baselines.Learned()))

        def cb(step, history):
            if stop_at is not None and step + 1 == stop_at:
                raise Crash

        try:
            fit(lambda s: est(model, guide, 4, context=context), guide, 20, lr=0.05,
                stateful=[est], seed=3, checkpoint=path, checkpoint_every=5, progress=False,
                callback=cb)  # fmt: skip
        except Crash:
            pass
        return guide

    full = run(tmp_path / "a.pt")
    run(tmp_path / "b.pt", stop_at=13)  # last checkpoint at step 10
    resumed = run(tmp_path / "b.pt")
    for a, b in zip(full.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_resume_with_other_settings_is_refused_naming_each(tmp_path):
    from scoregrad.app import ConfigChangeError

    path = tmp_path / "c.pt"
    model, guide, est = _setup()
    objective = lambda s: est(model, guide, 4)  # noqa: E731
    fit(objective, guide, 10, lr=0.05, seed=3, checkpoint=path, progress=False,
        config={"baseline": "moving-average"})  # fmt: skip
    with pytest.raises(ConfigChangeError) as e:
        fit(objective, guide, 10, lr=0.01, seed=4, checkpoint=path, progress=False,
            config={"baseline": "loo"})  # fmt: skip
    text = str(e.value)
    for part in ("--lr 0.01 (saved 0.05)", "--seed 4 (saved 3)", "--baseline loo"):
        assert part in text
    res = fit(objective, guide, 20, lr=0.01, seed=3, checkpoint=path, progress=False,
              config={"baseline": "moving-average"}, allow_changes=True)  # fmt: skip
    assert res.steps == 20 and res.changes == [{"step": 10, "options": ["--lr 0.01 (saved 0.05)"]}]
    assert res.history["lr"][10] == pytest.approx(0.01)


def test_extending_a_finished_cosine_run_rebuilds_the_schedule(tmp_path):
    path = tmp_path / "c.pt"
    model, guide, est = _setup()
    objective = lambda s: est(model, guide, 4)  # noqa: E731
    kw = dict(lr=0.05, schedule="cosine", seed=3, checkpoint=path, progress=False)
    fit(objective, guide, 20, **kw)
    res = fit(objective, guide, 40, **kw)
    lrs = res.history["lr"]
    assert len(lrs) == 40 and res.resumed_from == 20
    after = lrs[20:]
    assert all(b <= a for a, b in zip(after, after[1:]))  # decays; never climbs back up
    assert after[0] == pytest.approx(0.05 * 0.5)  # the 40-step cosine at step 20
    assert after[-1] < 0.05 * 0.01


def test_fit_leaves_the_global_rng_alone():
    torch.manual_seed(11)
    before = torch.get_rng_state()
    model, guide, est = _setup()
    fit(lambda s: est(model, guide, 4), guide, 5, seed=0, progress=False, grad_var_every=2,
        grad_var_repeats=2)  # fmt: skip
    assert torch.equal(torch.get_rng_state(), before)


def test_runners_leave_the_global_rng_alone():
    from scoregrad.vi.data import load_dataset
    from scoregrad.vi.models import sbn
    from scoregrad.vi.models.gmm import fit_gmm

    torch.manual_seed(11)
    before = torch.get_rng_state()
    fit_gmm("score", steps=3, seed=2)
    d = load_dataset(None)
    sbn.train(d, "reinforce-loo", steps=2, batch_size=5, z_dim=4, seed=2, progress=False)
    assert torch.equal(torch.get_rng_state(), before)


def test_beta_bernoulli_first_step_within_survives_a_resume(tmp_path):
    from scoregrad.vi.models.beta_bernoulli import fit_beta_bernoulli

    kw = dict(steps=300, lr=0.01, schedule=None, seed=0)
    whole = fit_beta_bernoulli("moving-average", **kw)
    assert whole.converged_at is not None and whole.converged_at < 150
    path = tmp_path / "bb.pt"
    fit_beta_bernoulli("moving-average", **{**kw, "steps": 150}, checkpoint=path)
    resumed = fit_beta_bernoulli("moving-average", **kw, checkpoint=path)
    assert resumed.converged_at == whole.converged_at  # was 151 (counted from the resume)
    assert (resumed.a, resumed.b) == (whole.a, whole.b)  # and the run continued exactly


@pytest.mark.parametrize("estimator", ["relax", "nvil"])
def test_stateful_estimators_resume_bit_for_bit(tmp_path, estimator):
    """RELAX's control network and optimiser, NVIL's learned baseline: saved and restored."""
    from scoregrad.vi.data import load_dataset
    from scoregrad.vi.models import sbn

    d = load_dataset(None)
    kw = dict(batch_size=8, z_dim=6, seed=1, progress=False)
    whole = sbn.train(d, estimator, steps=8, **kw)
    sbn.train(d, estimator, steps=4, checkpoint=tmp_path / "c.pt", **kw)
    resumed = sbn.train(d, estimator, steps=8, checkpoint=tmp_path / "c.pt", **kw)
    for a, b in zip(whole["model"].parameters(), resumed["model"].parameters(), strict=True):
        assert torch.equal(a, b)
    assert whole["history"]["elbo"] == resumed["history"]["elbo"]
