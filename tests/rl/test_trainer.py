import json

import numpy as np
import pytest
import torch

from scoregrad.rl import CheckpointError, TrainConfig, Trainer, evaluate, load_checkpoint
from scoregrad.rl.rollout import UnknownEnvironmentError


def test_cartpole_smoke_returns_improve():
    """20 updates of CartPole at a fixed seed (about 4k env steps, about a second):
    the last 20 episodes' mean return is well above the first 20's."""
    cfg = TrainConfig("CartPole-v1", baseline="loo", episodes=80, batch_episodes=4, lr=0.02)
    t = Trainer(cfg, progress=False)
    res = t.train()
    first, last = np.mean(res.returns[:20]), np.mean(res.returns[-20:])
    assert res.episodes == 80 and res.env_steps == sum(res.lengths)
    assert last > 2.5 * first, (first, last)
    t.close()


def _params(trainer):
    return {k: v.detach().clone() for k, v in trainer.agent.state_dict()["policy"].items()}


@pytest.mark.parametrize("baseline", ["value", "moving-average"])
def test_resume_is_exact(tmp_path, baseline):
    """Interrupted at a checkpoint and resumed gives bit-identical parameters and history."""
    kw = dict(baseline=baseline, batch_episodes=4, lr=0.02, seed=3)
    full = Trainer(TrainConfig("CartPole-v1", episodes=24, **kw), tmp_path / "a", progress=False)
    full.train()
    part = Trainer(TrainConfig("CartPole-v1", episodes=12, **kw), tmp_path / "b", progress=False)
    part.train()
    resumed = Trainer.resume(tmp_path / "b" / "checkpoint.pt", episodes=24, progress=False)
    resumed.train()
    a, b = _params(full), _params(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert full.returns == resumed.returns
    va, vb = full.agent.baseline.state_dict(), resumed.agent.baseline.state_dict()
    assert str(va) == str(vb)
    # logs were rewritten consistently on resume
    rows = (tmp_path / "b" / "episodes.csv").read_text().strip().splitlines()
    assert len(rows) == 25
    log = [json.loads(x) for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in log] == list(range(1, 7))
    assert (tmp_path / "b" / "learning_curve.png").stat().st_size > 0


def test_training_does_not_touch_global_rng():
    torch.manual_seed(123)
    np.random.seed(5)
    before, np_before = torch.get_rng_state(), np.random.get_state()[1].copy()
    Trainer(TrainConfig("CartPole-v1", episodes=4, batch_episodes=2), progress=False).train()
    assert torch.equal(torch.get_rng_state(), before)
    assert np.array_equal(np.random.get_state()[1], np_before)


def test_checkpoint_from_another_env(tmp_path):
    Trainer(
        TrainConfig("CartPole-v1", episodes=2, batch_episodes=2), tmp_path, progress=False
    ).train()
    ckpt = tmp_path / "checkpoint.pt"
    with pytest.raises(CheckpointError, match="trained on CartPole-v1, not Acrobot-v1"):
        Trainer.resume(ckpt, env_id="Acrobot-v1", progress=False)
    with pytest.raises(CheckpointError, match="not Acrobot-v1"):
        evaluate(ckpt, env_id="Acrobot-v1")
    state = load_checkpoint(ckpt)  # weights_only load works
    state["env_id"] = "Acrobot-v1"
    other = Trainer(TrainConfig("CartPole-v1", episodes=2, batch_episodes=2), progress=False)
    with pytest.raises(CheckpointError, match="Fix"):
        other.load_state_dict(state)
    torch.save({"something": 1}, tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="not a checkpoint of this kind"):
        load_checkpoint(tmp_path / "junk.pt")


def test_evaluate_trained_policy(tmp_path):
    cfg = TrainConfig("CartPole-v1", baseline="loo", episodes=60, batch_episodes=4, lr=0.02)
    Trainer(cfg, tmp_path, progress=False).train()
    sampled = evaluate(tmp_path / "checkpoint.pt", episodes=8, seed=0)
    again = evaluate(tmp_path / "checkpoint.pt", episodes=8, seed=0)
    assert sampled["returns"] == again["returns"] and len(sampled["returns"]) == 8
    greedy = evaluate(tmp_path / "checkpoint.pt", episodes=8, seed=0, greedy=True)
    assert greedy["mean"] > 40  # a random policy averages about 22


def test_continuous_env_trains_a_step(tmp_path):
    cfg = TrainConfig("Pendulum-v1", baseline="value", episodes=4, batch_episodes=2, max_steps=20)
    t = Trainer(cfg, tmp_path, progress=False)
    res = t.train()
    assert res.env_steps == 80
    assert t.policy.log_std.grad is not None


def test_config_errors():
    with pytest.raises(UnknownEnvironmentError, match="CartPole-v1"):
        TrainConfig("Cartpole-v1")
    with pytest.raises(ValueError, match="use one of none, moving-average, loo, value"):
        TrainConfig("CartPole-v1", baseline="critic")
    with pytest.raises(ValueError, match="at least 2 episodes"):
        TrainConfig("CartPole-v1", baseline="loo", batch_episodes=1)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_trains_under_float64_default_dtype(env_id):
    """Observations are cast to the networks' dtype, whatever torch's default dtype is."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        cfg = TrainConfig(env_id, baseline="value", episodes=4, batch_episodes=2, max_steps=20)
        t = Trainer(cfg, progress=False)
        t.train()
        assert t.policy.net[0].weight.dtype == torch.float64
    finally:
        torch.set_default_dtype(old)
