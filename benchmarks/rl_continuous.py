"""Continuous control (and LunarLander) with scoregrad's shipped defaults against SB3 PPO and A2C.

Per environment and seed, in the same run and at the same env-step budget: scoregrad
(``TrainConfig.for_env(env)``: exactly what ``scoregrad rl train ENV`` uses), Stable-Baselines3
PPO and A2C with the RL-Zoo hyperparameters (hyperparams/ppo.yml, a2c.yml; the zoo's own budgets
differ, the budget here is the issue's). Each row: env steps, training episodes, wall time, and the
mean return of 10 greedy (deterministic) evaluation episodes on fresh seeds. One torch thread.

Targets (issue 14): Pendulum-v1 median ≥ −200 and every seed ≥ −400 within 200k steps;
MountainCarContinuous-v0 ≥ 90 on 4 of 5 seeds within 100k steps; LunarLander-v3 ≥ 200 on 4 of 5
seeds within 1M steps.

    python benchmarks/rl_continuous.py                                   # all, 5 seeds, 3 methods
    python benchmarks/rl_continuous.py --envs pendulum,mountaincar
    python benchmarks/rl_continuous.py --envs lunarlander --seeds 0,1 --steps 300000  # reduced

Writes benchmarks/results/rl_continuous.{json,md} (each invocation replaces the rows it ran).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from scoregrad.rl import TrainConfig, Trainer, evaluate

RESULTS = Path(__file__).parent / "results"
ENVS = {
    "pendulum": ("Pendulum-v1", 200_000),
    "mountaincar": ("MountainCarContinuous-v0", 100_000),
    "lunarlander": ("LunarLander-v3", 1_000_000),
}
TARGETS = {
    "Pendulum-v1": "median ≥ −200, every seed ≥ −400",
    "MountainCarContinuous-v0": "≥ 90 on 4/5 seeds",
    "LunarLander-v3": "≥ 200 on 4/5 seeds",
}
EVAL_EPISODES = 10

_lin = "lin"  # RL-Zoo's linear schedules, lin_x: x · remaining progress
ZOO = {
    ("ppo", "Pendulum-v1"): dict(
        n_envs=4, n_steps=1024, gae_lambda=0.95, gamma=0.9, n_epochs=10, ent_coef=0.0,
        learning_rate=1e-3, clip_range=0.2, use_sde=True, sde_sample_freq=4,
    ),
    ("a2c", "Pendulum-v1"): dict(
        normalize=True, n_envs=8, ent_coef=0.0, max_grad_norm=0.5, n_steps=8, gae_lambda=0.9,
        vf_coef=0.4, gamma=0.9, use_rms_prop=True, normalize_advantage=False,
        learning_rate=(_lin, 7e-4), use_sde=True, policy_kwargs=dict(log_std_init=-2, ortho_init=False),
    ),
    ("ppo", "MountainCarContinuous-v0"): dict(
        normalize=True, n_envs=1, batch_size=256, n_steps=8, gamma=0.9999, learning_rate=7.77e-05,
        ent_coef=0.00429, clip_range=0.1, n_epochs=10, gae_lambda=0.9, max_grad_norm=5,
        vf_coef=0.19, use_sde=True, policy_kwargs=dict(log_std_init=-3.29, ortho_init=False),
    ),
    ("a2c", "MountainCarContinuous-v0"): dict(
        normalize=True, n_envs=4, n_steps=100, ent_coef=0.0, use_sde=True, sde_sample_freq=16,
        policy_kwargs=dict(log_std_init=0.0, ortho_init=False),
    ),
    ("ppo", "LunarLander-v3"): dict(
        n_envs=16, n_steps=1024, batch_size=64, gae_lambda=0.98, gamma=0.999, n_epochs=4,
        ent_coef=0.01,
    ),
    ("a2c", "LunarLander-v3"): dict(
        n_envs=8, gamma=0.995, n_steps=5, learning_rate=(_lin, 0.00083), ent_coef=0.00001,
    ),
}  # fmt: skip


def _greedy_sb3(model, env_id, vecnorm, seed):
    import gymnasium as gym

    env = gym.make(env_id)
    returns = []
    for e in range(EVAL_EPISODES):
        obs, _ = env.reset(seed=10_000 + 100 * seed + e)
        done, total = False, 0.0
        while not done:
            x = vecnorm.normalize_obs(obs) if vecnorm is not None else obs
            action, _ = model.predict(x, deterministic=True)
            obs, r, term, trunc, _ = env.step(action)
            total += float(r)
            done = term or trunc
        returns.append(total)
    env.close()
    return float(np.mean(returns))


def run_sb3(algo, env_id, seed, steps):
    from stable_baselines3 import A2C, PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    hp = dict(ZOO[(algo, env_id)])
    n_envs, normalize = hp.pop("n_envs"), hp.pop("normalize", False)
    for k, v in hp.items():
        if isinstance(v, tuple) and v[0] == _lin:
            hp[k] = (lambda x: lambda progress: progress * x)(v[1])

    class Count(BaseCallback):
        episodes = 0

        def _on_step(self):
            self.episodes += sum("episode" in info for info in self.locals["infos"])
            return True

    env = make_vec_env(env_id, n_envs=n_envs, seed=seed)
    vecnorm = None
    if normalize:
        env = vecnorm = VecNormalize(env, gamma=hp.get("gamma", 0.99))
    cls = {"ppo": PPO, "a2c": A2C}[algo]
    model = cls("MlpPolicy", env, seed=seed, verbose=0, device="cpu", **hp)
    cb = Count()
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps, callback=cb)
    wall = time.perf_counter() - t0
    if vecnorm is not None:
        vecnorm.training = False
    ret = _greedy_sb3(model, env_id, vecnorm, seed)
    env.close()
    return {"env_steps": int(model.num_timesteps), "episodes": cb.episodes, "seconds": wall,
            "greedy_return": ret}  # fmt: skip


def run_scoregrad(env_id, seed, steps, runs):
    cfg = TrainConfig.for_env(env_id, seed=seed, env_steps=steps)
    t = Trainer(cfg, runs / env_id / f"seed{seed}", progress=False, force=True,
                checkpoint_every=10**9)  # fmt: skip
    t0 = time.perf_counter()
    res = t.train()
    wall = time.perf_counter() - t0
    t.close()
    ev = evaluate(t.out_dir, episodes=EVAL_EPISODES, seed=10_000 + seed, greedy=True)
    return {"env_steps": res.env_steps, "episodes": res.episodes, "seconds": wall,
            "greedy_return": ev["mean"], "bias_sources": res.bias_sources}  # fmt: skip


def _summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def markdown(report) -> str:
    lines = []
    for env_id, by_method in report["results"].items():
        lines += [f"### {env_id} (target: {TARGETS.get(env_id, '-')})", "",
                  "| method | seed | env steps | episodes | wall s | greedy return |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for method, rows in by_method.items():
            for r in rows:
                lines.append(
                    f"| {method} | {r['seed']} | {r['env_steps']} | {r['episodes']} | "
                    f"{r['seconds']:.0f} | {r['greedy_return']:.1f} |"
                )
        lines += ["", "| method | greedy return, median (min–max) | wall s, median | "
                  "wall / PPO's |", "|---|---|---|---|"]  # fmt: skip
        ppo_wall = by_method.get("sb3-ppo")
        ppo_wall = statistics.median(r["seconds"] for r in ppo_wall) if ppo_wall else None
        for method, rows in by_method.items():
            s = _summary([r["greedy_return"] for r in rows])
            w = statistics.median(r["seconds"] for r in rows)
            ratio = f"{w / ppo_wall:.2f}" if ppo_wall else "-"
            lines.append(f"| {method} | {s['median']:.1f} ({s['min']:.1f}–{s['max']:.1f}) | "
                         f"{w:.0f} | {ratio} |")  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--envs", default="pendulum,mountaincar,lunarlander")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--methods", default="scoregrad,sb3-ppo,sb3-a2c")
    p.add_argument("--steps", type=int, default=None, help="override every env's step budget")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    runs = out / "rl_runs"
    runs.mkdir(parents=True, exist_ok=True)
    (runs / ".gitignore").write_text("*\n")
    store = out / "rl_continuous.json"
    report = json.loads(store.read_text()) if store.exists() else {"results": {}}
    seeds = [int(s) for s in args.seeds.split(",")]
    for key in args.envs.split(","):
        env_id, budget = ENVS[key.strip()]
        steps = args.steps or budget
        by_method = report["results"].setdefault(env_id, {})
        for method in args.methods.split(","):
            rows = []
            for seed in seeds:
                if method == "scoregrad":
                    r = run_scoregrad(env_id, seed, steps, runs)
                else:
                    r = run_sb3(method.removeprefix("sb3-"), env_id, seed, steps)
                r.update(seed=seed, budget=steps)
                rows.append(r)
                print(f"{env_id} {method} seed {seed}: {r['env_steps']} steps, {r['episodes']} "
                      f"episodes, {r['seconds']:.0f} s, greedy {r['greedy_return']:.1f}",
                      flush=True)  # fmt: skip
                kept = [
                    x
                    for x in by_method.get(method, [])
                    if x["seed"] not in {y["seed"] for y in rows}
                ]
                by_method[method] = sorted(kept + rows, key=lambda x: x["seed"])
                store.write_text(json.dumps(report, indent=1))
                (out / "rl_continuous.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
