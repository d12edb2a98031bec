"""Compare baselines × seeds on one environment: a table and learning curves on one plot.

>>> from scoregrad.rl.compare import compare
>>> rows = compare("CartPole-v1", ["none", "loo"], seeds=[0], episodes=4, batch_episodes=2)
>>> [r["baseline"] for r in rows]
['none', 'loo']
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .trainer import TrainConfig, Trainer, TrainResult, moving_average

__all__ = ["compare", "plot_curves", "summarise"]


def summarise(results: Sequence[TrainResult]) -> dict:
    """Median and spread of episodes/env steps to solve, wall time and steps/s over seeds."""
    solved = [r.solved_episode for r in results if r.solved_episode is not None]
    steps = [r.solved_env_steps for r in results if r.solved_env_steps is not None]

    def stats(x):
        if not x:
            return None
        return {"median": float(np.median(x)), "min": float(np.min(x)), "max": float(np.max(x))}

    return {
        "baseline": results[0].baseline,
        "seeds": [r.seed for r in results],
        "solved": f"{len(solved)}/{len(results)}",
        "episodes_to_solve": stats(solved),
        "env_steps_to_solve": stats(steps),
        "per_seed_episodes": [r.solved_episode for r in results],
        "per_seed_env_steps": [r.solved_env_steps for r in results],
        "final_mean_return": stats([r.final_mean for r in results]),
        "seconds": stats([r.seconds for r in results]),
        "steps_per_s": stats([r.steps_per_second for r in results]),
    }


def plot_curves(curves: dict[str, list[list[float]]], path, title: str, window: int = 100):
    """Per baseline: median over seeds of the moving-average return, shaded min-max."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, runs in curves.items():
        n = max(len(r) for r in runs)
        ma = np.full((len(runs), n), np.nan)
        for i, r in enumerate(runs):
            m = moving_average(r, window)
            ma[i, : len(m)] = m
            ma[i, len(m) :] = m[-1] if len(m) else np.nan  # a run that stopped (solved) stays
        x = np.arange(1, n + 1)
        (line,) = ax.plot(x, np.nanmedian(ma, 0), label=f"{name} ({len(runs)} seeds)")
        ax.fill_between(x, np.nanmin(ma, 0), np.nanmax(ma, 0), color=line.get_color(), alpha=0.15)
    ax.set(xlabel="episode", ylabel=f"return ({window}-episode moving average)", title=title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def compare(
    env_id: str,
    baselines: Sequence[str],
    seeds: Sequence[int],
    out_dir: str | os.PathLike | None = None,
    progress: bool = False,
    **config,
) -> list[dict]:
    """Train every baseline with every seed; returns one summary row per baseline.

    With ``out_dir``, each run writes its own logs under ``out_dir/<baseline>/seed<k>/``, and the
    comparison writes ``summary.json`` and ``learning_curves.png``.
    """
    rows, curves = [], {}
    for b in baselines:
        results = []
        for s in seeds:
            cfg = TrainConfig(env_id, baseline=b, seed=int(s), **config)
            run_dir = Path(out_dir) / b / f"seed{s}" if out_dir is not None else None
            trainer = Trainer(cfg, run_dir, progress=progress)
            results.append(trainer.train())
            trainer.close()
        curves[b] = [r.returns for r in results]
        rows.append(summarise(results))
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(rows, indent=2))
        plot_curves(curves, out / "learning_curves.png", f"{env_id}: REINFORCE baselines")
    return rows
