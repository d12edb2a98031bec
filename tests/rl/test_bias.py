"""The bias of each option of step batches, measured against the exact gradient of a tabular MDP.

The MDP is ``TabularMDP`` (two states, two actions, stochastic termination) with a time limit of
200 steps, which an episode outlives with probability below 1e-9: the objective is
J(θ) = E[Σ_t r_t] of the episode, computed with its value function V^π by dynamic programming
through the policy network. Step batches (T = 16 steps on k = 4 sub-environments, episodes cut
and carried over) average ∇log π(a_t|s_t) Â_t over the steps, whose visit distribution is the
episodes' (the collector keeps running, after a burn-in), so E[ĝ] should be ∇J / E[L], with E[L]
the expected episode length (policy-gradient theorem).

Each option's mean over M batches is compared with that target: the z-score of each component
(standard errors from means of blocks of 5 consecutive batches, which are nearly independent),
and the relative bias ‖E ĝ − g*‖ / ‖g*‖. With the exact V^π, GAE is unbiased for every λ and
bootstrapped cuts: that is tested (|z| < 4.42). The biased options' figures are printed
(``pytest tests/rl/test_bias.py -s``) and reported in docs/rl.md; the test checks that the bias
of λ < 1 with a wrong value (V ≡ 0) is detected.
"""

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from scoregrad.rl import make_policy
from scoregrad.rl.gae_agent import GAEReinforce
from scoregrad.rl.steps import StepCollector, make_step_envs
from scoregrad.rl.surrogates import LikelihoodRatio, PPOClip, VTrace
from scoregrad.testing import Z_CRIT
from tests.rl.conftest import TabularMDP

ENV = "ScoregradTest/TabularMDPLong-v0"
if ENV not in gym.registry:
    gym.register(ENV, entry_point=TabularMDP, max_episode_steps=200)
H, K, T, BURN, M, BLOCK = 200, 4, 16, 5, 400, 5


def _dp(probs, rewards):
    """V(s) = E[Σ_t rewards[s_t, a_t]] from each state, by backward induction over H steps."""
    R = torch.as_tensor(rewards, dtype=probs.dtype)
    Q, P = (torch.as_tensor(x, dtype=probs.dtype) for x in (TabularMDP.Q, TabularMDP.P))
    V = torch.zeros(2, dtype=probs.dtype)
    for _ in range(H):
        V = (probs * (R + (1 - Q) * (P @ V))).sum(1)
    return V


def _policy(weight, bias):
    envs, _ = make_step_envs(ENV, K)
    pi = make_policy(envs.single_observation_space, envs.single_action_space, hidden=())
    with torch.no_grad():
        pi.net[0].weight.copy_(torch.as_tensor(weight))
        pi.net[0].bias.copy_(torch.as_tensor(bias))
    return envs, pi


def _exact(pi):
    """(g* = ∇J / E[L] as a flat vector, V^π per state)."""
    probs = pi.dist(torch.arange(2)).probs.double()
    J = _dp(probs, TabularMDP.R)[0]
    grads = torch.autograd.grad(J, list(pi.parameters()))
    g = torch.cat([x.reshape(-1) for x in grads])
    length = _dp(probs.detach(), np.ones((2, 2)))[0]
    return (g / length).detach(), _dp(probs.detach(), TabularMDP.R).float()


class TableValue(nn.Module):
    """A fixed value per (one-hot encoded) state."""

    def __init__(self, values):
        super().__init__()
        self.v = nn.Parameter(torch.as_tensor(values, dtype=torch.float32), requires_grad=False)

    def forward(self, obs):
        return self.v[obs.long()]


def _scores(pi, batch):
    """∇θ log π(a|s) per step, (T·k, 6), for the linear-softmax policy (closed form)."""
    s, a = batch.flat("obs").long(), batch.flat("actions").long()
    p = pi.dist(s).probs.detach()
    d = nn.functional.one_hot(a, 2).float() - p  # ∂ log π / ∂ logits
    x = nn.functional.one_hot(s, 2).float()
    return torch.cat([(d[:, :, None] * x[:, None, :]).reshape(-1, 4), d], 1)


def _batches(pi, seed=0):
    c = StepCollector(_policy_envs[0], np.random.default_rng(seed))
    g = torch.Generator().manual_seed(seed)
    for _ in range(BURN):
        c.collect(pi, T, g)
    return [c.collect(pi, T, g) for _ in range(M)]


W0, B0 = [[0.5, -1.0], [-0.3, 0.8]], [0.2, -0.1]
#: θ1 − θ0 for the off-policy rows: a small step (most ratios inside PPO's [0.8, 1.2]) and a large
#: one (a change of 1.6 in each state's logit difference)
DELTAS = {"small": 0.25, "large": 1.0}
DELTA_W = [[0.8, -0.8], [-0.8, 0.8]]
_policy_envs = _policy(W0, B0)


def _measure(per_batch, target):
    est, target = torch.stack(per_batch).double(), target.double()
    blocks = est.reshape(-1, BLOCK, est.shape[1]).mean(1)
    mean = blocks.mean(0)
    se = blocks.std(0) / blocks.shape[0] ** 0.5
    z = (mean - target) / se
    rel = float((mean - target).norm() / target.norm())
    rel_se = float(se.norm() / target.norm())
    cos = float(mean @ target / (mean.norm() * target.norm()))
    return {"z_max": float(z.abs().max()), "rel_bias": rel, "rel_se": rel_se, "cosine": cos}


def _on_policy_rows():
    envs, pi = _policy_envs
    target, V = _exact(pi)
    batches = _batches(pi)
    scores = [_scores(pi, b) for b in batches]
    rows = {}
    for vname, values in (("exact V", V), ("V = 0", torch.zeros(2))):
        for lam in (1.0, 0.9, 0.5, 0.0):
            agent = GAEReinforce(pi, TableValue(values), LikelihoodRatio(), gamma=1.0, lam=lam)
            est = [
                (sc * agent.advantages(b)[0].reshape(-1, 1)).mean(0)
                for sc, b in zip(scores, batches)
            ]
            rows[f"GAE lambda={lam}, {vname}"] = _measure(est, target)
        if vname == "exact V":  # the agent's own gradient is the mean of these terms
            direct = torch.cat([g.reshape(-1) for g in agent.gradient(batches[0]).values()])
            assert torch.allclose(direct, est[0], atol=1e-6)
    agent = GAEReinforce(pi, TableValue(V), LikelihoodRatio(), gamma=1.0, lam=0.95,
                         normalize_advantages=True)  # fmt: skip
    est = []
    for sc, b in zip(scores, batches):
        A = agent.advantages(b)[0].reshape(-1)
        est.append((sc * ((A - A.mean()) / (A.std() + 1e-8)).reshape(-1, 1)).mean(0))
    rows["normalised advantages, lambda=0.95, exact V"] = _measure(est, target)
    return rows


def _off_policy_rows():
    """Batches from θ0, the gradient at θ1 (a later step on the same batch), exact V^{π1}, λ = 0."""
    envs, pi0 = _policy_envs
    batches = _batches(pi0, seed=1)
    rows = {}
    for size, scale in DELTAS.items():
        _, pi1 = _policy(np.add(W0, np.multiply(scale, DELTA_W)), B0)
        rows.update(_surrogate_rows(pi0, pi1, batches, size))
    return rows


def _surrogate_rows(pi0, pi1, batches, size):
    target, V1 = _exact(pi1)
    rows = {}
    for surrogate in (LikelihoodRatio(), PPOClip(0.2), VTrace(1.0)):
        agent = GAEReinforce(pi1, TableValue(V1), surrogate, gamma=1.0, lam=0.0)
        est = []
        for b in batches:
            s, a = b.flat("obs"), b.flat("actions")
            log_ratio = (pi1.dist(s).log_prob(a) - pi0.dist(s).log_prob(a)).detach()
            log_ratio.requires_grad_(True)
            A = agent.advantages(b)[0].reshape(-1)
            (dlr,) = torch.autograd.grad(surrogate.objective(log_ratio, A).sum(), log_ratio)
            est.append((_scores(pi1, b) * dlr.reshape(-1, 1)).mean(0))
        rows[f"{surrogate.name}, {size} step from the batch's policy"] = _measure(est, target)
    return rows


@pytest.fixture(scope="module")
def measured():
    rows = {**_on_policy_rows(), **_off_policy_rows()}
    print("\noption | max |z| | relative bias (± se) | cosine with exact")
    for name, r in rows.items():
        print(
            f"{name} | {r['z_max']:.1f} | {r['rel_bias']:.3f} (± {r['rel_se']:.3f}) | {r['cosine']:.3f}"
        )
    return rows


def test_gae_with_the_true_value_is_unbiased_for_every_lambda(measured):
    for lam in (1.0, 0.9, 0.5, 0.0):
        r = measured[f"GAE lambda={lam}, exact V"]
        assert r["z_max"] < Z_CRIT, (lam, r)


def test_a_wrong_value_makes_lambda_below_one_biased(measured):
    assert measured["GAE lambda=0.0, V = 0"]["z_max"] > Z_CRIT
    lams = [measured[f"GAE lambda={lam}, V = 0"]["rel_bias"] for lam in (1.0, 0.9, 0.5, 0.0)]
    assert lams[-1] > lams[0]  # the bias grows as λ falls


def test_biased_options_are_measured(measured):
    """Measured, not bounded: the figures go to docs/rl.md. Normalisation rescales (its cosine
    stays near 1); PPO-clip's surviving terms after a large step pull back towards θ_old."""
    assert measured["normalised advantages, lambda=0.95, exact V"]["cosine"] > 0.99
    for name in ("score", "ppo-clip", "v-trace"):
        for size in DELTAS:
            row = measured[f"{name}, {size} step from the batch's policy"]
            assert np.isfinite(row["rel_bias"]) and np.isfinite(row["cosine"])
    # at a small step every surrogate still points along the exact gradient
    assert measured["ppo-clip, small step from the batch's policy"]["cosine"] > 0.9
