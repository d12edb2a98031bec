"""``scoregrad rl``: train, evaluate and compare REINFORCE agents on Gymnasium environments.

scoregrad rl train CartPole-v1 --baseline loo --episodes 600 --stop-when-solved --out runs/cp
scoregrad rl train --resume runs/cp --episodes 800         # extend the saved run's budget
scoregrad rl eval runs/cp --episodes 20 --greedy
scoregrad rl compare CartPole-v1 --baselines none,moving-average,loo,value --seeds 0,1,2
scoregrad rl sequence --task digit-sum --baseline loo --group-size 8 --steps 300

Run folders, resume and the common options (``--out``, ``--seed``, ``--resume``, ``--json``,
``--no-progress``, ``--force``, ``--allow-changes``) behave as in every scoregrad command:
see docs/runs.md. Nothing heavy is imported here at module level (``--help`` stays fast).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from ..app.cli import (
    ALLOW_CHANGES,
    FORCE,
    JSON,
    OUT,
    OWNS_PROCESS,
    PROGRESS,
    RESUME,
    SEED,
    choose,
    explicit,
    finite,
    group,
    note,
    write_json,
)
from ..errors import ScoregradError

app = group("Policy gradients (REINFORCE) on Gymnasium environments.")
rl_app = app  # the old name

_BASELINE_HELP = "none | moving-average | loo | value"

_SURROGATE_HELP = "score | ppo-clip | v-trace (biased: see docs/rl.md)"

# TrainConfig field -> command-line parameter, where the names differ
_FIELDS = {"normalize_advantages": "normalize"}


@contextlib.contextmanager
def _threads(n: int):
    """torch's thread count for this command, only where the command owns the process (the
    ``scoregrad`` console entry point says so): run in-process (``app([...])``, tests, a notebook)
    a command never changes its caller's thread count, even for a while."""
    import click

    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    if not (isinstance(obj, dict) and obj.get(OWNS_PROCESS)):
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)  # the process is this command's; restored all the same
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(h) for h in text.split(",") if h.strip())
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise typer.BadParameter(
            f"{text!r} is not a list of positive layer sizes (e.g. 64,64).", param_hint="--hidden"
        )
    return sizes


def _threshold(env_id: str, stop_when_solved: bool, stop_at: float | None):
    if stop_at is not None or not stop_when_solved:
        return stop_at
    import gymnasium as gym

    from .rollout import check_env_id

    check_env_id(env_id)
    threshold = gym.spec(env_id).reward_threshold
    if threshold is None:
        raise ScoregradError(f"{env_id} has no reward threshold registered. Fix: pass --stop-at.")
    return threshold


def _result_text(result) -> str:
    return (
        f"{result.env_id} baseline={result.baseline} seed={result.seed}: {result.episodes} "
        f"episodes, {result.env_steps} env steps, {result.seconds:.1f} s "
        f"({result.steps_per_second:.0f} steps/s); last-100 mean return {result.final_mean:.1f}; "
        + (
            f"solved at episode {result.solved_episode} ({result.solved_env_steps} steps)"
            if result.solved_episode
            else "not solved"
        )
    )


@app.command()
def train(
    ctx: typer.Context,
    env_id: str = typer.Argument(
        None, help="Gymnasium environment id, e.g. CartPole-v1 (with --resume: the saved one)."
    ),
    baseline: str = typer.Option("value", help=_BASELINE_HELP),
    episodes: int = typer.Option(1000, min=1, help="Budget of training episodes."),
    batch_episodes: int = typer.Option(4, min=1, help="Episodes per policy update."),
    num_envs: int = typer.Option(
        0, min=0, help="Sub-environments (0: one per episode of a batch)."
    ),
    lr: float = typer.Option(0.02, min=0, callback=finite, help="Adam step size of the policy."),
    gamma: float = typer.Option(0.99, min=0, max=1, help="Discount of the reward-to-go."),
    hidden: str = typer.Option("64", help="Hidden layer sizes, comma-separated."),
    normalize: bool = typer.Option(True, help="Normalise advantages over the batch."),
    entropy_coef: float = typer.Option(0.0, callback=finite, help="Entropy bonus weight."),
    max_grad_norm: float = typer.Option(
        0.0, min=0, callback=finite, help="Clip the gradient norm (0: off)."
    ),
    value_lr: float = typer.Option(
        0.01, min=0, callback=finite, help="Adam step size of the value baseline."
    ),
    value_steps: int = typer.Option(5, min=1, help="Value-network steps per batch."),
    log_std_init: float = typer.Option(
        0.0, callback=finite, help="Initial log-std of Gaussian policies."
    ),
    max_steps: int = typer.Option(0, min=0, help="Episode step cap (0: the env's time limit)."),
    env_steps: int = typer.Option(0, min=0, help="Budget of environment steps (0: none)."),
    stop_when_solved: bool = typer.Option(
        False, help="Stop when the 100-episode mean reaches the env's reward threshold."
    ),
    stop_at: float = typer.Option(
        None, callback=finite, help="Stop when the 100-episode mean reaches this."
    ),
    batch: str = typer.Option(
        "episodes", help="episodes (whole episodes per update) | steps (n steps per sub-env)."
    ),
    n_steps: int = typer.Option(256, min=1, help="Steps per sub-env per update (--batch steps)."),
    gae_lambda: float = typer.Option(0.95, min=0, max=1, help="GAE lambda (--batch steps)."),
    epochs: int = typer.Option(1, min=1, help="Passes over each batch (--batch steps)."),
    minibatches: int = typer.Option(1, min=1, help="Minibatches per pass (--batch steps)."),
    surrogate: str = typer.Option("score", help=_SURROGATE_HELP),
    clip_range: float = typer.Option(0.2, min=0, callback=finite, help="PPO-clip epsilon."),
    rho_bar: float = typer.Option(1.0, min=0, callback=finite, help="V-trace truncation."),
    normalize_obs: bool = typer.Option(False, help="Running observation normalisation."),
    normalize_reward: bool = typer.Option(False, help="Running reward scaling."),
    state_std: bool = typer.Option(False, help="State-dependent log-std (Gaussian policies)."),
    squash: str = typer.Option("clip", help="clip | tanh: how a Gaussian draw becomes the action."),
    noise_corr: float = typer.Option(
        0.0, min=0, max=0.999, callback=finite, help="AR(1) correlation of the Gaussian noise."
    ),
    show_defaults: bool = typer.Option(
        False, "--show-defaults", help="Print the settings ENV_ID trains with, and exit."
    ),
    seed: SEED = 0,
    device: str = typer.Option("cpu", help="cpu or cuda."),
    out: OUT = None,
    resume: RESUME = None,
    force: FORCE = False,
    allow_changes: ALLOW_CHANGES = False,
    checkpoint_every: int = typer.Option(10, min=1, help="Updates between checkpoints."),
    threads: int = typer.Option(1, min=1, help="torch threads."),
    json_path: JSON = None,
    progress: PROGRESS = True,
):
    """Train; writes episodes.csv, log.jsonl, learning_curve.png, checkpoint.pt.

    Settings not given take ENV_ID's shipped defaults (scoregrad.rl.defaults; print them with
    --show-defaults), else TrainConfig's.
    """
    from dataclasses import asdict

    from ..app.runs import default_run_folder
    from .agent import BASELINE_NAMES
    from .surrogates import SURROGATE_NAMES
    from .trainer import TrainConfig, Trainer

    given = explicit(ctx)
    baseline = choose(BASELINE_NAMES, baseline, "--baseline")
    surrogate = choose(SURROGATE_NAMES, surrogate, "--surrogate")
    values = dict(
        env_id=env_id, baseline=baseline, episodes=episodes, batch_episodes=batch_episodes,
        num_envs=num_envs or None, gamma=gamma, lr=lr, hidden=_hidden(hidden),
        normalize_advantages=normalize, entropy_coef=entropy_coef,
        max_grad_norm=max_grad_norm or None, value_lr=value_lr, value_steps=value_steps,
        log_std_init=log_std_init, max_steps=max_steps or None, env_steps=env_steps or None,
        seed=seed, device=device, batch=batch, n_steps=n_steps, gae_lambda=gae_lambda,
        epochs=epochs, minibatches=minibatches, surrogate=surrogate, clip_range=clip_range,
        rho_bar=rho_bar, normalize_obs=normalize_obs, normalize_reward=normalize_reward,
        state_std=state_std, squash=squash, noise_corr=noise_corr,
    )  # fmt: skip
    # only what the user typed: the rest comes from the env's defaults (or the saved run)
    requested = {k: v for k, v in values.items() if _FIELDS.get(k, k) in given or k == "env_id"}
    if {"stop_when_solved", "stop_at"} & given and env_id is not None:
        requested["stop_at"] = _threshold(env_id, stop_when_solved, stop_at)
    if show_defaults:
        if env_id is None:
            raise typer.BadParameter("give the environment id.", param_hint="ENV_ID")
        cfg = TrainConfig.for_env(**requested)
        typer.echo(f"settings for {env_id} (shipped defaults, then TrainConfig's):")
        for k, v in cfg.to_dict().items():
            typer.echo(f"  {k:22} {v}")
        write_json(json_path, cfg.to_dict())
        return
    with _threads(threads):
        if resume is not None:
            if env_id is None:
                requested.pop("env_id", None)
            if {"stop_when_solved", "stop_at"} & given:
                saved_env = env_id or _saved_env(resume)
                requested["stop_at"] = _threshold(saved_env, stop_when_solved, stop_at)
            trainer = Trainer.resume(
                resume, out, given=requested, allow_changes=allow_changes, force=force,
                progress=progress, checkpoint_every=checkpoint_every,
            )  # fmt: skip
        else:
            if env_id is None:
                raise typer.BadParameter(
                    "give the environment id (e.g. CartPole-v1), or --resume RUN_FOLDER.",
                    param_hint="ENV_ID",
                )
            cfg = TrainConfig.for_env(**requested)
            folder = out if out is not None else default_run_folder("rl", env_id)
            trainer = Trainer(
                cfg, folder, progress=progress, checkpoint_every=checkpoint_every, force=force
            )
        if trainer.run is not None and trainer.run.archived is not None:
            note(f"the run that was in {trainer.out_dir} was moved to {trainer.run.archived}.")
        try:
            result = trainer.train()
        except KeyboardInterrupt:
            note(
                f"interrupted. The run in {trainer.out_dir} keeps its last checkpoint "
                f"({trainer.run.read().get('progress', '')}); continue it with --resume "
                f"{trainer.out_dir}."
            )
            raise typer.Exit(130) from None
        finally:
            trainer.close()
    typer.echo(_result_text(result))
    if result.bias_sources:
        typer.echo("biased options in force: " + "; ".join(result.bias_sources))
    typer.echo(f"logs and checkpoint in {trainer.out_dir}")
    data = asdict(result)
    data.update(out=str(trainer.out_dir), steps_per_second=result.steps_per_second)
    write_json(json_path, data)


def _saved_env(resume: Path) -> str:
    from .trainer import load_checkpoint

    return load_checkpoint(resume)["env_id"]


@app.command("eval")
def eval_(
    checkpoint: Path = typer.Argument(..., help="A run folder, or its checkpoint.pt."),
    episodes: int = typer.Option(20, min=1, help="Episodes to run."),
    greedy: bool = typer.Option(False, help="Take the most likely action / the Gaussian mean."),
    env_id: str = typer.Option(None, help="Check the checkpoint was trained on this env."),
    seed: SEED = 0,
    json_path: JSON = None,
):
    """Evaluate a saved policy on fresh episodes."""
    from .evaluation import evaluate

    with _threads(1):
        res = evaluate(checkpoint, episodes=episodes, seed=seed, greedy=greedy, env_id=env_id)
    if str(json_path) != "-":
        typer.echo(
            f"{res['env_id']}: mean return {res['mean']:.2f} ± {res['std']:.2f} (sd) over "
            f"{episodes} episodes ({'greedy' if greedy else 'sampled'} actions; policy trained "
            f"for {res['trained_episodes']} episodes)"
        )
    write_json(json_path, res)


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds:
        raise typer.BadParameter(
            f"{text!r} is not a comma-separated list of integers (e.g. 0,1,2).",
            param_hint="--seeds",
        )
    return seeds


@app.command()
def compare(
    env_id: str = typer.Argument(..., help="Gymnasium environment id."),
    baselines: str = typer.Option(
        "none,moving-average,loo,value", help="Comma-separated baselines."
    ),
    seeds: str = typer.Option("0,1,2", help="Comma-separated seeds."),
    episodes: int = typer.Option(1000, min=1, help="Budget of episodes per run."),
    batch_episodes: int = typer.Option(4, min=1, help="Episodes per policy update."),
    lr: float = typer.Option(0.02, min=0, callback=finite, help="Adam step size of the policy."),
    gamma: float = typer.Option(0.99, min=0, max=1, help="Discount of the reward-to-go."),
    stop_when_solved: bool = typer.Option(True, help="Stop each run once it is solved."),
    out: OUT = None,
    force: FORCE = False,
    json_path: JSON = None,
    progress: PROGRESS = True,
):
    """Train baselines × seeds; print a table and draw their learning curves on one plot.

    Episodes to solve: the median over all seeds, an unsolved seed counting as its whole budget
    (then the median is a lower bound, shown with ≥), beside solved k/n.
    """
    from ..app.runs import default_run_folder
    from .agent import BASELINE_NAMES
    from .compare import compare as run_compare

    names = choose(BASELINE_NAMES, baselines, "--baselines", many=True)
    seed_list = _seeds(seeds)
    threshold = _threshold(env_id, stop_when_solved, None)
    folder = out if out is not None else default_run_folder("rl-compare", env_id)
    with _threads(1):
        rows = run_compare(
            env_id, names, seed_list, folder, progress=progress, force=force, episodes=episodes,
            batch_episodes=batch_episodes, lr=lr, gamma=gamma, stop_at=threshold,
        )  # fmt: skip
    typer.echo(f"{'baseline':16} {'solved':>7} {'episodes to solve: median (min-max)':>38}")
    for r in rows:
        e = r["episodes_to_solve"]
        mark = "≥" if e["median_censored"] else ""
        span = f"{mark}{e['median']:.0f} ({e['min']:.0f}-{e['max']:.0f})"
        typer.echo(f"{r['baseline']:16} {r['solved']:>7} {span:>38}")
    typer.echo(f"(an unsolved seed counts as its {episodes}-episode budget)")
    typer.echo(f"learning curves: {Path(folder) / 'learning_curves.png'}")
    write_json(json_path, rows)


@app.command()
def sequence(
    task: str = typer.Option("digit-sum", help="digit-sum | target-string"),
    baseline: str = typer.Option("loo", help="loo | group-norm | moving-average | none"),
    group_size: int = typer.Option(8, min=1, help="K samples per prompt."),
    prompts: int = typer.Option(16, min=1, help="Prompts per step."),
    steps: int = typer.Option(300, min=1, help="Optimiser steps."),
    lr: float = typer.Option(3e-3, min=0, callback=finite, help="Adam step size."),
    seed: SEED = 0,
    json_path: JSON = None,
    progress: PROGRESS = True,
):
    """Train a GRU token policy on a black-box sequence reward with a group baseline."""
    from ..app.names import Names
    from .sequence import GROUP_BASELINE_NAMES, DigitSumTask, SequenceTrainer, TargetStringTask

    tasks = {"digit-sum": DigitSumTask, "target-string": TargetStringTask}
    task = choose(Names("task", list(tasks)), task, "--task")
    baseline = choose(GROUP_BASELINE_NAMES, baseline, "--baseline")
    with _threads(1):
        t = SequenceTrainer(tasks[task](), baseline, group_size, prompts, lr=lr, seed=seed)
        res = t.train(steps, progress=progress)
    typer.echo(
        f"{task} baseline={baseline} K={group_size}: mean reward {res.mean_reward[0]:.3f} -> "
        f"{res.final:.3f} (last 20 steps) in {steps} steps, {res.samples} samples, "
        f"{res.seconds:.1f} s"
    )
    write_json(
        json_path,
        {"task": task, "baseline": baseline, "group_size": group_size, "steps": steps,
         "final": res.final, "mean_reward": res.mean_reward, "samples": res.samples},
    )  # fmt: skip


def register(root: typer.Typer) -> None:
    """Add the ``rl`` command group to the main ``scoregrad`` app."""
    root.add_typer(app, name="rl")
