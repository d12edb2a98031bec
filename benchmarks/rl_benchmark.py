"""REINFORCE with scoregrad's baselines on Gymnasium classic control, over several seeds.

Measures, per seed, with one torch thread:

* CartPole-v1: episodes and env steps until the 100-episode mean return reaches 475, for each
  baseline (none / moving average / RLOO / learned value), plus wall time and env steps per second.
* Acrobot-v1: episodes and env steps until the 100-episode mean reaches -100.
* Pendulum-v1: the return reached after a fixed budget of env steps (mean of the last 100
  training episodes, and a deterministic evaluation of the final policy over 20 episodes).

Reference in the same run (``--sb3``): Stable-Baselines3 PPO with RL-Zoo hyperparameters on
CartPole-v1, measured the same way (episodes to a 100-episode mean of 475). Published reference:
SB3 A2C on Pendulum-v1 (RL Zoo, 1e6 steps, gSDE): -141.19 ± 122.27 (huggingface.co/araffin/
a2c-Pendulum-v1, 10 deterministic episodes).

    python benchmarks/rl_benchmark.py --sb3 --fresh        # everything, 5 seeds, SB3 reference
    python benchmarks/rl_benchmark.py --envs pendulum --pendulum-steps 1000000  # adds a row
    python benchmarks/rl_benchmark.py --envs cartpole --seeds 0 --baselines loo   # quick look

Writes benchmarks/results/rl_benchmark.{json,md} and learning-curve PNGs.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from scoregrad.rl import TrainConfig, Trainer, evaluate
from scoregrad.rl.compare import plot_curves, summarise

RESULTS = Path(__file__).parent / "results"

CONFIGS = {
    "CartPole-v1": dict(batch_episodes=4, lr=0.02, gamma=0.99, episodes=1500, stop_at=475.0),
    "Acrobot-v1": dict(
        batch_episodes=4, lr=0.02, gamma=0.99, episodes=1000, stop_at=-100.0, env_steps=250_000
    ),
    "Pendulum-v1": dict(batch_episodes=8, lr=0.01, gamma=0.9, episodes=10**9, env_steps=200_000),
}
#: per-(env, baseline) changes to the env's config
OVERRIDES = {("Acrobot-v1", "loo"): dict(batch_episodes=8)}


def _run_name(baseline: str, cfg: dict) -> str:
    """Run folder: the baseline, plus the step budget for fixed-budget (Pendulum) runs."""
    return baseline if cfg.get("stop_at") is not None else f"{baseline}-{cfg['env_steps']}"


def run(env_id, baseline, seed, device, out, **overrides):
    cfg = {**CONFIGS[env_id], **OVERRIDES.get((env_id, baseline), {}), **overrides}
    trainer = Trainer(
        TrainConfig(env_id, baseline=baseline, seed=seed, device=device, **cfg),
        out / env_id / _run_name(baseline, cfg) / f"seed{seed}",
        progress=False,
        checkpoint_every=10**9,
        force=True,  # a rerun replaces the run (the old one is archived beside it)
    )
    t0 = time.perf_counter()
    res = trainer.train()
    wall = time.perf_counter() - t0
    trainer.close()
    print(
        f"  {env_id:12} {baseline:6} seed {seed}: solved at {res.solved_episode} episodes / "
        f"{res.solved_env_steps} steps; {res.episodes} eps, {res.env_steps} steps, {wall:.1f} s "
        f"({res.env_steps / wall:.0f} steps/s), last-100 mean {res.final_mean:.1f}",
        flush=True,
    )
    return res, wall


def sb3_ppo_cartpole(seed, max_steps=200_000):
    """SB3 PPO, RL-Zoo CartPole-v1 hyperparameters; episodes to a 100-episode mean of 475."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    class Stop(BaseCallback):
        def __init__(self):
            super().__init__()
            self.returns, self.lengths = [], []

        def _on_step(self):
            for info in self.locals["infos"]:
                if "episode" in info:
                    self.returns.append(info["episode"]["r"])
                    self.lengths.append(info["episode"]["l"])
            r = self.returns
            return not (len(r) >= 100 and np.mean(r[-100:]) >= 475)

    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    lin = lambda v: lambda progress: progress * v
    model = PPO(
        "MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20,
        ent_coef=0.0, learning_rate=lin(0.001), clip_range=lin(0.2), seed=seed, verbose=0,
        device="cpu",
    )  # fmt: skip
    cb = Stop()
    t0 = time.perf_counter()
    model.learn(total_timesteps=max_steps, callback=cb)
    wall = time.perf_counter() - t0
    from scoregrad.rl.trainer import solved_at

    ep, steps = solved_at(cb.returns, cb.lengths, 475.0)
    print(
        f"  SB3 PPO seed {seed}: solved at {ep} episodes / {steps} steps, {wall:.1f} s", flush=True
    )
    return {"seed": seed, "episodes": ep, "env_steps": steps, "seconds": wall,
            "total_steps": int(model.num_timesteps)}  # fmt: skip


def _fmt(s, digits=0):
    if s is None:
        return "-"
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"


def _stats(x):
    x = [v for v in x if v is not None]
    if not x:
        return None
    return {"median": float(np.median(x)), "min": float(np.min(x)), "max": float(np.max(x))}


def _returns(csv_path: Path) -> list[float]:
    import csv

    with open(csv_path) as fh:
        return [float(row["return"]) for row in csv.DictReader(fh)]


def markdown(report: dict) -> str:
    md = [
        "# rl_benchmark",
        "",
        "REINFORCE (scoregrad.rl) with the core baselines; one torch thread; 2-core machine shared "
        "with other jobs, so wall times are upper bounds. 'episodes to solve' = first episode at "
        "which the mean return of the last 100 episodes reaches the threshold.",
        "",
    ]
    for env_id in ("CartPole-v1", "Acrobot-v1", "Pendulum-v1"):
        rows = report["results"].get(env_id)
        if not rows:
            continue
        md += [f"## {env_id}", ""]
        md += [f"- `{r['baseline']}`: config `{r['config']}`, seeds {r['seeds']}" for r in rows]
        md.append("")
        if env_id == "Pendulum-v1":
            md += ["| baseline | env steps | last-100 training mean | greedy eval (20 eps) | "
                   "wall s/seed | steps/s |", "|---|---|---|---|---|---|"]  # fmt: skip
            for r in rows:
                md.append(
                    f"| {r['baseline']} | {r['total_env_steps'][0]} | "
                    f"{_fmt(r['final_mean_return'], 1)} | {_fmt(r['greedy_eval_mean'], 1)} | "
                    f"{_fmt(r['wall_seconds'], 1)} | {_fmt(r['steps_per_s'])} |"
                )
            md += [
                "",
                "Reference: SB3 A2C (RL Zoo, 1e6 env steps, gSDE, normalised obs): -141.19 ± "
                "122.27 (published on huggingface.co/araffin/a2c-Pendulum-v1).",
            ]
        else:
            md += ["| baseline | solved | episodes to solve median (min-max) | per seed | "
                   "env steps to solve median (min-max) | wall s/seed | steps/s |",
                   "|---|---|---|---|---|---|---|"]  # fmt: skip
            for r in rows:
                md.append(
                    f"| {r['baseline']} | {r['solved']} | {_fmt(r['episodes_to_solve'])} | "
                    f"{r['per_seed_episodes']} | {_fmt(r['env_steps_to_solve'])} | "
                    f"{_fmt(r['wall_seconds'], 1)} | {_fmt(r['steps_per_s'])} |"
                )
            ppo = report["results"].get("sb3_ppo_cartpole") if env_id == "CartPole-v1" else None
            if ppo:
                eps = _stats([r["episodes"] for r in ppo])
                steps = _stats([r["env_steps"] for r in ppo])
                wall = _stats([r["seconds"] for r in ppo])
                solved = sum(r["episodes"] is not None for r in ppo)
                md.append(
                    f"| SB3 PPO (RL-Zoo settings, same machine) | {solved}/{len(ppo)} | "
                    f"{_fmt(eps)} | {[r['episodes'] for r in ppo]} | {_fmt(steps)} | "
                    f"{_fmt(wall, 1)} | - |"
                )
        md += ["", f"![{env_id}](rl_benchmark_{env_id}.png)", ""]
    return "\n".join(md) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--envs", default="cartpole,acrobot,pendulum")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--baselines", default="none,ma,loo,value", help="CartPole baselines")
    p.add_argument("--acrobot-baselines", default="loo,value")
    p.add_argument("--pendulum-baselines", default="value")
    p.add_argument("--pendulum-steps", type=int, default=200_000)
    p.add_argument("--sb3", action="store_true", help="also run SB3 PPO on CartPole (reference)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--fresh", action="store_true", help="discard results stored by earlier runs")
    args = p.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs_dir = out / "rl_runs"  # per-run logs and checkpoints, not kept in git
    runs_dir.mkdir(exist_ok=True)
    (runs_dir / ".gitignore").write_text("*\n")
    envs = {e.strip().lower() for e in args.envs.split(",")}
    store = out / "rl_benchmark.json"
    report = {"results": {}}
    if store.exists() and not args.fresh:  # each invocation replaces only what it ran
        report = json.loads(store.read_text())
    report.update(machine=platform.processor() or platform.machine(), torch_threads=1)

    def save():
        store.write_text(json.dumps(report, indent=2))
        (out / "rl_benchmark.md").write_text(markdown(report))

    plan = []
    if "cartpole" in envs:
        plan.append(("CartPole-v1", args.baselines.split(","), {}))
    if "acrobot" in envs:
        plan.append(("Acrobot-v1", args.acrobot_baselines.split(","), {}))
    if "pendulum" in envs:
        plan.append(("Pendulum-v1", args.pendulum_baselines.split(","),
                     {"env_steps": args.pendulum_steps}))  # fmt: skip
    for env_id, baselines, overrides in plan:
        curves, rows = {}, []
        for b in baselines:
            cfg = {**CONFIGS[env_id], **OVERRIDES.get((env_id, b), {}), **overrides}
            print(f"{env_id} {b}: {cfg}", flush=True)
            results, walls = [], []
            for s in seeds:
                r, w = run(env_id, b, s, args.device, runs_dir, **overrides)
                results.append(r)
                walls.append(w)
            row = summarise(results)
            row["config"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}
            row["device"] = args.device
            row["wall_seconds"] = _stats(walls)
            row["total_env_steps"] = [r.env_steps for r in results]
            if env_id == "Pendulum-v1":
                evals = [
                    evaluate(runs_dir / env_id / _run_name(b, cfg) / f"seed{s}" / "checkpoint.pt",
                             episodes=20,
                             seed=1000 + s, greedy=True)["mean"]
                    for s in seeds
                ]  # fmt: skip
                row["greedy_eval_mean"] = {**_stats(evals), "per_seed": evals}
            rows.append(row)
            curves[_run_name(b, cfg)] = [r.returns for r in results]
        # replace this invocation's baselines, keep the others stored by earlier invocations
        key = lambda r: (_run_name(r["baseline"], r["config"]), r["config"].get("env_steps"))
        ran = {key(r) for r in rows}
        kept = [r for r in report["results"].get(env_id, []) if key(r) not in ran]
        report["results"][env_id] = kept + rows
        for r in kept:  # their learning curves, from their runs' episode logs
            curves[_run_name(r["baseline"], r["config"])] = [
                _returns(runs_dir / env_id / _run_name(r["baseline"], r["config"]) / f"seed{s}"
                         / "episodes.csv")
                for s in r["seeds"]
            ]  # fmt: skip
        order = [_run_name(r["baseline"], r["config"]) for r in report["results"][env_id]]
        plot_curves({b: curves[b] for b in order}, out / f"rl_benchmark_{env_id}.png",
                    f"{env_id}: REINFORCE, {len(seeds)} seeds (median, min-max)")  # fmt: skip
        save()

    if args.sb3:
        print("SB3 PPO reference on CartPole-v1", flush=True)
        report["results"]["sb3_ppo_cartpole"] = [sb3_ppo_cartpole(s) for s in seeds]
    save()
    print(markdown(report))


if __name__ == "__main__":
    main()
