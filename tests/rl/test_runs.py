"""Run folders, resume rules and the defects of issue 10 for ``scoregrad.rl``: a run is never
overwritten, a resume keeps its saved budget and settings, interrupted runs resume bit for bit,
the progress bar follows an env-step budget, and Discrete spaces that do not start at 0 work."""

import json

import numpy as np
import pytest
import torch

from scoregrad.app import ConfigChangeError, RunExistsError
from scoregrad.rl import TrainConfig, Trainer
from scoregrad.rl.compare import summarise
from scoregrad.rl.rollout import MissingEnvironmentDependency, make_envs
from scoregrad.rl.trainer import TrainResult


def _cfg(**kw):
    kw = {"baseline": "loo", "episodes": 8, "batch_episodes": 4, "seed": 1, **kw}
    return TrainConfig("CartPole-v1", **kw)


def _train(cfg, out, **kw):
    t = Trainer(cfg, out, progress=False, **kw)
    try:
        return t, t.train()
    finally:
        t.close()


def _params(trainer):
    return {k: v.detach().clone() for k, v in trainer.agent.state_dict()["policy"].items()}


def test_second_run_into_the_same_folder_is_refused(tmp_path):
    out = tmp_path / "run"
    _train(_cfg(episodes=12), out)
    before = (out / "episodes.csv").read_text()
    with pytest.raises(RunExistsError, match="--resume"):
        Trainer(_cfg(episodes=4), out, progress=False)
    assert (out / "episodes.csv").read_text() == before  # nothing was touched
    t, _ = _train(_cfg(episodes=4), out, force=True)
    archived = [p for p in tmp_path.iterdir() if p.name.startswith("run.archived-")]
    assert len(archived) == 1 and (archived[0] / "episodes.csv").read_text() == before
    assert t.run.archived == archived[0]
    assert json.loads((out / "run.json").read_text())["status"] == "finished"


def test_folder_with_other_files_is_never_touched(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunExistsError, match="not a scoregrad run"):
        Trainer(_cfg(), tmp_path, progress=False, force=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_resume_keeps_the_saved_budget_and_extends_only_when_asked(tmp_path):
    _train(_cfg(episodes=8), tmp_path / "r")
    t = Trainer.resume(tmp_path / "r", progress=False)
    assert t.config.episodes == 8  # not the option's default
    assert t.train().episodes == 8
    t = Trainer.resume(tmp_path / "r", given={"episodes": 12}, progress=False)
    assert t.train().episodes == 12
    with pytest.raises(ValueError, match="below the 12 episodes"):
        Trainer.resume(tmp_path / "r", given={"episodes": 4}, progress=False)


def test_resume_refuses_changed_settings_naming_each(tmp_path):
    _train(_cfg(lr=0.003), tmp_path / "r")
    with pytest.raises(ConfigChangeError) as e:
        Trainer.resume(tmp_path / "r", given={"lr": 0.01, "seed": 3}, progress=False)
    text = str(e.value)
    assert "--lr 0.01 (saved 0.003)" in text and "--seed 3 (saved 1)" in text
    with pytest.raises(ConfigChangeError, match="--baseline value"):
        Trainer.resume(tmp_path / "r", given={"baseline": "value"}, allow_changes=True)
    # allowed: applied (to Adam's param groups too) and logged
    t = Trainer.resume(tmp_path / "r", given={"lr": 0.01}, allow_changes=True, progress=False)
    assert t.config.lr == 0.01 and t.agent.optimizer.param_groups[0]["lr"] == 0.01
    t.close()
    record = json.loads((tmp_path / "r" / "run.json").read_text())
    assert record["changes"][0]["options"] == ["--lr 0.01 (saved 0.003)"]
    assert t.state_dict()["changes"][0]["options"] == ["--lr 0.01 (saved 0.003)"]


def test_interrupted_run_resumes_bit_for_bit(tmp_path, monkeypatch):
    cfg = _cfg(episodes=24, baseline="value", seed=5)
    full, _ = _train(cfg, tmp_path / "full")

    calls = {"n": 0}
    original = Trainer.step

    def crash_on_fourth(self):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "step", crash_on_fourth)
    with pytest.raises(KeyboardInterrupt):
        _train(cfg, tmp_path / "part", checkpoint_every=2)
    monkeypatch.setattr(Trainer, "step", original)
    record = json.loads((tmp_path / "part" / "run.json").read_text())
    assert record["status"] == "interrupted" and record["progress"].startswith("8/24")
    resumed = Trainer.resume(tmp_path / "part", progress=False)
    assert len(resumed.returns) == 8  # the checkpoint after the second update
    resumed.train()
    a, b = _params(full), _params(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert full.returns == resumed.returns
    assert str(full.agent.baseline.state_dict()) == str(resumed.agent.baseline.state_dict())


def test_progress_bar_follows_an_env_step_budget():
    t = Trainer(_cfg(episodes=1000, env_steps=300), progress=False)
    assert t.progress_bar() == {"total": 300, "initial": 0, "unit": "step"}
    t.train()
    assert 300 <= t.env_steps and t.progress_bar()["initial"] == 300
    t.close()
    t = Trainer(_cfg(episodes=8), progress=False)
    assert t.progress_bar() == {"total": 8, "initial": 0, "unit": "ep"}
    t.close()


@pytest.mark.parametrize("baseline", ["none", "moving-average", "loo", "value"])
def test_discrete_spaces_that_do_not_start_at_zero(baseline):
    cfg = TrainConfig("ScoregradTest/ShiftedDiscrete-v0", baseline=baseline, episodes=8)
    t = Trainer(cfg, progress=False)
    res = t.train()  # padding used to be observation 0, outside Discrete(3, start=5)
    assert res.episodes == 8 and set(res.lengths) <= {2, 3, 4} and len(set(res.lengths)) > 1
    t.close()


def test_missing_optional_dependency_names_the_extra(monkeypatch):
    """Without Box2D (simulated: gymnasium's own error), LunarLander names the box2d extra."""
    import gymnasium as gym

    def missing(*args, **kwargs):
        raise gym.error.DependencyNotInstalled(
            'Box2D is not installed, run `pip install "gymnasium[box2d]"`'
        )

    monkeypatch.setattr(gym, "make_vec", missing)
    with pytest.raises(MissingEnvironmentDependency, match=r'pip install "scoregrad\[box2d\]"'):
        make_envs("LunarLander-v3", 1)


def _result(seed, solved):
    return TrainResult("X-v0", "loo", seed, 100, 1000, 1.0, [], [], solved, solved, 0.0)


def test_compare_median_counts_unsolved_seeds_as_the_budget():
    rows = summarise(
        [_result(0, 40), _result(1, None), _result(2, None)],
        [{"episodes": 100, "env_steps": None}] * 3,
    )
    e = rows["episodes_to_solve"]
    assert rows["solved"] == "1/3"
    assert e["median"] == 100 and e["unsolved"] == 2 and e["median_censored"]
    e = summarise([_result(0, 40), _result(1, 60), _result(2, None)])["episodes_to_solve"]
    assert e["median"] == 60 and not e["median_censored"] and e["max"] == 100


def test_training_leaves_numpy_and_torch_global_rng_alone():
    torch.manual_seed(7)
    np.random.seed(7)
    before, np_before = torch.get_rng_state(), np.random.get_state()[1].copy()
    t = Trainer(_cfg(episodes=4), progress=False)
    t.train()
    t.close()
    assert torch.equal(torch.get_rng_state(), before)
    assert np.array_equal(np.random.get_state()[1], np_before)
