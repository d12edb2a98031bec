"""``scoregrad rl``: train, evaluate and compare REINFORCE agents on Gymnasium environments.

scoregrad rl train CartPole-v1 --baseline loo --episodes 600 --stop-when-solved --out runs/cp
scoregrad rl train CartPole-v1 --resume runs/cp/checkpoint.pt --episodes 800
scoregrad rl eval runs/cp/checkpoint.pt --episodes 20 --greedy
scoregrad rl compare CartPole-v1 --baselines none,ma,loo,value --seeds 0,1,2 --out runs/cmp
scoregrad rl sequence --task digit-sum --baseline loo --group-size 8 --steps 300
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..errors import ScoregradError

rl_app = typer.Typer(
    help="Policy gradients (REINFORCE) on Gymnasium environments.", no_args_is_help=True
)


def _fail(e: Exception):
    typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _threads(n: int):
    import torch

    torch.set_num_threads(n)


@rl_app.command()
def train(
    env_id: str = typer.Argument(..., help="Gymnasium environment id, e.g. CartPole-v1."),
    baseline: str = typer.Option("value", help="none | ma | loo | value"),
    episodes: int = typer.Option(1000, help="Budget of training episodes."),
    batch_episodes: int = typer.Option(4, help="Episodes per policy update."),
    num_envs: int = typer.Option(0, help="Sub-environments (0: one per episode of a batch)."),
    lr: float = typer.Option(0.02, help="Adam step size of the policy."),
    gamma: float = typer.Option(0.99, help="Discount of the reward-to-go."),
    hidden: str = typer.Option("64", help="Hidden layer sizes, comma-separated."),
    normalize: bool = typer.Option(True, help="Normalise advantages over the batch."),
    entropy_coef: float = typer.Option(0.0, help="Entropy bonus weight."),
    max_grad_norm: float = typer.Option(0.0, help="Clip the gradient norm (0: off)."),
    value_lr: float = typer.Option(0.01, help="Adam step size of the value baseline."),
    value_steps: int = typer.Option(5, help="Value-network steps per batch."),
    log_std_init: float = typer.Option(0.0, help="Initial log-std of Gaussian policies."),
    max_steps: int = typer.Option(0, help="Episode step cap (0: the env's time limit)."),
    env_steps: int = typer.Option(0, help="Budget of environment steps (0: none)."),
    stop_when_solved: bool = typer.Option(
        False, help="Stop when the 100-episode mean reaches the env's reward threshold."
    ),
    stop_at: float = typer.Option(None, help="Stop when the 100-episode mean reaches this."),
    seed: int = typer.Option(0),
    device: str = typer.Option("cpu"),
    out: Path = typer.Option(
        None,
        help="Directory for logs, plot and checkpoint (default runs/rl, or the resumed one's).",
    ),
    resume: Path = typer.Option(None, help="Continue from this checkpoint.pt."),
    checkpoint_every: int = typer.Option(10, help="Updates between checkpoints."),
    threads: int = typer.Option(1, help="torch threads."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
):
    """Train REINFORCE; writes episodes.csv, log.jsonl, learning_curve.png and checkpoint.pt."""
    import gymnasium as gym

    from .trainer import TrainConfig, Trainer

    _threads(threads)
    try:
        if resume is not None:
            trainer = Trainer.resume(
                resume, out, episodes=episodes, env_id=env_id, progress=progress,
                checkpoint_every=checkpoint_every,
            )  # fmt: skip
        else:
            out = out if out is not None else Path("runs/rl")
            threshold = stop_at
            if stop_when_solved and threshold is None:
                from .rollout import check_env_id

                check_env_id(env_id)
                threshold = gym.spec(env_id).reward_threshold
                if threshold is None:
                    raise ScoregradError(
                        f"{env_id} has no reward threshold registered. Fix: pass --stop-at."
                    )
            cfg = TrainConfig(
                env_id, baseline=baseline, episodes=episodes, batch_episodes=batch_episodes,
                num_envs=num_envs or None, gamma=gamma, lr=lr,
                hidden=tuple(int(h) for h in hidden.split(",") if h.strip()),
                normalize_advantages=normalize, entropy_coef=entropy_coef,
                max_grad_norm=max_grad_norm or None, value_lr=value_lr, value_steps=value_steps,
                log_std_init=log_std_init, max_steps=max_steps or None, stop_at=threshold,
                env_steps=env_steps or None, seed=seed, device=device,
            )  # fmt: skip
            trainer = Trainer(cfg, out, progress=progress, checkpoint_every=checkpoint_every)
        result = trainer.train()
        trainer.close()
    except (ScoregradError, ValueError) as e:
        _fail(e)
    typer.echo(
        f"{result.env_id} baseline={result.baseline} seed={result.seed}: {result.episodes} "
        f"episodes, {result.env_steps} env steps, {result.seconds:.1f} s "
        f"({result.steps_per_second:.0f} steps/s); last-100 mean return {result.final_mean:.1f}; "
        + (
            f"solved at episode {result.solved_episode} ({result.solved_env_steps} steps)"
            if result.solved_episode
            else "not solved"
        )
    )
    typer.echo(f"logs and checkpoint in {trainer.out_dir}")


@rl_app.command("eval")
def eval_(
    checkpoint: Path = typer.Argument(..., help="checkpoint.pt written by `scoregrad rl train`."),
    episodes: int = typer.Option(20),
    greedy: bool = typer.Option(False, help="Take the most likely action / the Gaussian mean."),
    env_id: str = typer.Option(None, help="Check the checkpoint was trained on this env."),
    seed: int = typer.Option(0),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
):
    """Evaluate a saved policy on fresh episodes."""
    from .evaluate import evaluate

    _threads(1)
    try:
        res = evaluate(checkpoint, episodes=episodes, seed=seed, greedy=greedy, env_id=env_id)
    except (ScoregradError, ValueError) as e:
        _fail(e)
    if as_json:
        typer.echo(json.dumps(res))
    else:
        typer.echo(
            f"{res['env_id']}: mean return {res['mean']:.2f} ± {res['std']:.2f} (sd) over "
            f"{episodes} episodes ({'greedy' if greedy else 'sampled'} actions; policy trained "
            f"for {res['trained_episodes']} episodes)"
        )


@rl_app.command()
def compare(
    env_id: str = typer.Argument(...),
    baselines: str = typer.Option("none,ma,loo,value", help="Comma-separated baselines."),
    seeds: str = typer.Option("0,1,2", help="Comma-separated seeds."),
    episodes: int = typer.Option(1000),
    batch_episodes: int = typer.Option(4),
    lr: float = typer.Option(0.02),
    gamma: float = typer.Option(0.99),
    stop_when_solved: bool = typer.Option(True),
    out: Path = typer.Option(Path("runs/rl-compare")),
    progress: bool = typer.Option(True),
):
    """Train baselines × seeds; print a table and draw their learning curves on one plot."""
    import gymnasium as gym

    from .compare import compare as run_compare
    from .rollout import check_env_id

    _threads(1)
    try:
        check_env_id(env_id)
        threshold = gym.spec(env_id).reward_threshold if stop_when_solved else None
        rows = run_compare(
            env_id, [b.strip() for b in baselines.split(",")],
            [int(s) for s in seeds.split(",")], out, progress=progress, episodes=episodes,
            batch_episodes=batch_episodes, lr=lr, gamma=gamma, stop_at=threshold,
        )  # fmt: skip
    except (ScoregradError, ValueError) as e:
        _fail(e)
    typer.echo(f"{'baseline':10} {'solved':>7} {'episodes (median, min-max)':>28}")
    for r in rows:
        e = r["episodes_to_solve"]
        span = f"{e['median']:.0f} ({e['min']:.0f}-{e['max']:.0f})" if e else "-"
        typer.echo(f"{r['baseline']:10} {r['solved']:>7} {span:>28}")
    typer.echo(f"learning curves: {out / 'learning_curves.png'}")


@rl_app.command()
def sequence(
    task: str = typer.Option("digit-sum", help="digit-sum | target-string"),
    baseline: str = typer.Option("loo", help="loo | norm | ma | none"),
    group_size: int = typer.Option(8, help="K samples per prompt."),
    prompts: int = typer.Option(16, help="Prompts per step."),
    steps: int = typer.Option(300),
    lr: float = typer.Option(3e-3),
    seed: int = typer.Option(0),
):
    """Train a GRU token policy on a black-box sequence reward with a group baseline."""
    from .sequence import DigitSumTask, SequenceTrainer, TargetStringTask

    _threads(1)
    tasks = {"digit-sum": DigitSumTask, "target-string": TargetStringTask}
    try:
        if task not in tasks:
            raise ScoregradError(f"unknown task {task!r}. Fix: choose one of {', '.join(tasks)}.")
        t = SequenceTrainer(tasks[task](), baseline, group_size, prompts, lr=lr, seed=seed)
        res = t.train(steps, progress=True)
    except (ScoregradError, ValueError) as e:
        _fail(e)
    typer.echo(
        f"{task} baseline={baseline} K={group_size}: mean reward {res.mean_reward[0]:.3f} -> "
        f"{res.final:.3f} (last 20 steps) in {steps} steps, {res.samples} samples, "
        f"{res.seconds:.1f} s"
    )


def register(app: typer.Typer) -> None:
    """Add the ``rl`` command group to the main ``scoregrad`` app."""
    app.add_typer(rl_app, name="rl")
