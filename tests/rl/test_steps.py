"""Step batches: collection across episode ends, the new options as fast smoke runs, the
normaliser's state in the checkpoint, exact resume with every option, shipped defaults."""

import numpy as np
import pytest
import torch

from scoregrad.errors import ScoregradError
from scoregrad.rl import TrainConfig, Trainer, evaluate, load_checkpoint, make_policy
from scoregrad.rl.defaults import DEFAULTS
from scoregrad.rl.steps import StepCollector, make_step_envs


def test_collector_cuts_episodes_and_carries_them_over():
    envs, _ = make_step_envs("ScoregradTest/Countdown-v0", 2)
    pi = make_policy(envs.single_observation_space, envs.single_action_space, hidden=())
    c = StepCollector(envs, np.random.default_rng(0))
    g = torch.Generator().manual_seed(0)
    batches = [c.collect(pi, 5, g) for _ in range(4)]
    returns = sum((b.episode_returns for b in batches), [])
    lengths = sum((b.episode_lengths for b in batches), [])
    assert returns == [L * (L + 1) / 2 for L in lengths]  # known returns: whole episodes
    b = batches[0]
    assert b.obs.shape == (5, 2, 2) and b.rewards.shape == (5, 2) and b.env_steps == 10
    # a step after an episode end is the first step of the next episode (no wasted step)
    for t in range(4):
        for i in range(2):
            if b.ended[t, i]:
                assert b.obs[t + 1, i, 0] == b.obs[t + 1, i, 1]  # fresh episode: L steps left
                assert b.bootstrap_obs[t, i, 1] == 0  # the final observation: 0 steps left
    envs.close()


def _steps_cfg(env_id="Pendulum-v1", **kw):
    base = dict(
        batch="steps", num_envs=2, n_steps=16, env_steps=96, episodes=None, hidden=(8,),
        max_steps=20, seed=2,
    )  # fmt: skip
    return TrainConfig(env_id, **{**base, **kw})


OPTIONS = {
    "plain": {},
    "gae-lambda": dict(gae_lambda=0.5),
    "normalize-obs": dict(normalize_obs=True),
    "normalize-reward": dict(normalize_reward=True),
    "state-std": dict(state_std=True),
    "tanh": dict(squash="tanh"),
    "noise-corr": dict(noise_corr=0.9),
    "ppo-clip": dict(surrogate="ppo-clip", epochs=3, minibatches=2),
    "v-trace": dict(surrogate="v-trace", epochs=2, minibatches=2),
}


@pytest.mark.parametrize("name", list(OPTIONS))
def test_each_option_trains(name, tmp_path):
    t = Trainer(_steps_cfg(**OPTIONS[name]), tmp_path, progress=False)
    res = t.train()
    t.close()
    assert res.env_steps == 96 and res.episodes == 4  # 20-step episodes on 2 sub-envs
    assert all(np.isfinite(r["loss"]) for r in t.log)
    ev = evaluate(tmp_path, episodes=2, greedy=True)
    assert len(ev["returns"]) == 2


def test_discrete_actions_in_step_batches(tmp_path):
    t = Trainer(_steps_cfg("CartPole-v1", max_steps=None, surrogate="ppo-clip", epochs=2), tmp_path,
                progress=False)  # fmt: skip
    assert t.train().env_steps == 96
    t.close()


def test_normaliser_state_is_in_the_checkpoint(tmp_path):
    t = Trainer(_steps_cfg(normalize_obs=True), tmp_path, progress=False)
    t.train()
    state = load_checkpoint(tmp_path)["collector"]["obs_norm"]
    assert state["count"] == 2 + 96  # the first resets, then every observation a step returned
    assert torch.equal(state["mean"], t.collector.obs_norm.state_dict()["mean"])
    t.close()


@pytest.mark.parametrize(
    "options",
    [
        dict(normalize_obs=True, normalize_reward=True, noise_corr=0.8, state_std=True),
        dict(squash="tanh", surrogate="ppo-clip", epochs=2, minibatches=2, normalize_obs=True),
    ],
)
def test_step_run_resumes_bit_for_bit(tmp_path, options):
    """Interrupted mid-episode (20-step episodes, 16-step batches) and resumed: identical."""
    full = Trainer(_steps_cfg(**options), tmp_path / "a", progress=False)
    full.train()
    part = Trainer(_steps_cfg(**options, env_steps=32), tmp_path / "b", progress=False)
    part.train()
    assert any(part.collector.history)  # the checkpoint is in the middle of episodes
    resumed = Trainer.resume(tmp_path / "b", given={"env_steps": 96}, progress=False)
    resumed.train()
    a, b = full.agent.state_dict(), resumed.agent.state_dict()
    assert all(torch.equal(a["policy"][k], b["policy"][k]) for k in a["policy"])
    assert all(torch.equal(a["value"][k], b["value"][k]) for k in a["value"])
    assert full.returns == resumed.returns
    assert str(full.collector.state_dict()) == str(resumed.collector.state_dict())
    for t in (full, part, resumed):
        t.close()


def test_step_only_options_are_refused_with_episode_batches():
    with pytest.raises(ScoregradError, match="batch='steps'"):
        TrainConfig("Pendulum-v1", normalize_obs=True)
    with pytest.raises(ScoregradError, match="env_steps"):
        TrainConfig("Pendulum-v1", batch="steps")
    with pytest.raises(ScoregradError, match="learned value"):
        TrainConfig("Pendulum-v1", batch="steps", env_steps=10, baseline="loo")


def test_every_shipped_default_is_a_valid_config():
    for env_id in DEFAULTS:
        cfg = TrainConfig.for_env(env_id)
        assert cfg.env_id == env_id
    assert TrainConfig.for_env("Pendulum-v1", lr=0.5).lr == 0.5  # given beats the table
    assert TrainConfig.for_env("ScoregradTest/Countdown-v0") == TrainConfig(
        "ScoregradTest/Countdown-v0"
    )
