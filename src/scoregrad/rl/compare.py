"""Compare baselines × seeds on one environment: a table and learning curves on one plot.

The summary counts a seed that never solved the task as its whole budget (a lower bound on its
episodes to solve): the median over *all* seeds is reported, beside solved k/n, and is marked
censored (``median_censored``) when it is such a lower bound. Leaving unsolved seeds out would
flatter the baselines that fail.

>>> from scoregrad.rl.compare import compare
>>> rows = compare("CartPole-v1", ["none", "loo"], seeds=[0], episodes=4, batch_episodes=2)
>>> [r["baseline"] for r in rows]
['none', 'loo']
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np

from ..app.plotting import new_figure, save_figure
from ..app.runs import claim_run_folder
from .trainer import TrainConfig, Trainer, TrainResult, moving_average

__all__ = ["compare", "plot_curves", "summarise"]


def _censored_stats(values, budgets) -> dict:
    """Median, min, max over every seed; an unsolved seed (None) counts as its budget."""
    x = np.array([b if v is None else v for v, b in zip(values, budgets)], dtype=np.float64)
    unsolved = np.array([v is None for v in values])
    order = np.argsort(x, kind="stable")
    k = len(x)
    mid = order[[(k - 1) // 2, k // 2]]  # the one or two order statistics of the median
    return {
        "median": float(np.median(x)),
        "min": float(x.min()),
        "max": float(x.max()),
        "unsolved": int(unsolved.sum()),
        "median_censored": bool(unsolved[mid].any()),
    }


def summarise(results: Sequence[TrainResult], budgets: Sequence[dict] | None = None) -> dict:
    """Episodes/env steps to solve over seeds (unsolved seeds counted as their budget; see the
    module docstring), solved k/n, final mean return, wall time and steps/s.

    ``budgets``: per seed ``{"episodes": E, "env_steps": S}``; default: what each run used.
    """
    if budgets is None:
        budgets = [{"episodes": r.episodes, "env_steps": r.env_steps} for r in results]
    solved = [r.solved_episode for r in results if r.solved_episode is not None]

    def stats(x):
        return {"median": float(np.median(x)), "min": float(np.min(x)), "max": float(np.max(x))}

    return {
        "baseline": results[0].baseline,
        "seeds": [r.seed for r in results],
        "solved": f"{len(solved)}/{len(results)}",
        "episodes_to_solve": _censored_stats(
            [r.solved_episode for r in results], [b["episodes"] for b in budgets]
        ),
        "env_steps_to_solve": _censored_stats(
            [r.solved_env_steps for r in results],
            [
                b["env_steps"] if b["env_steps"] is not None else r.env_steps
                for r, b in zip(results, budgets)
            ],
        ),  # fmt: skip
        "per_seed_episodes": [r.solved_episode for r in results],
        "per_seed_env_steps": [r.solved_env_steps for r in results],
        "final_mean_return": stats([r.final_mean for r in results]),
        "seconds": stats([r.seconds for r in results]),
        "steps_per_s": stats([r.steps_per_second for r in results]),
    }


def plot_curves(curves: dict[str, list[list[float]]], path, title: str, window: int = 100):
    """Per baseline: median over seeds of the moving-average return, shaded min-max."""
    fig, ax = new_figure(figsize=(8, 4.5))
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
    return save_figure(fig, path, dpi=100)


def compare(
    env_id: str,
    baselines: Sequence[str],
    seeds: Sequence[int],
    out_dir: str | os.PathLike | None = None,
    progress: bool = False,
    force: bool = False,
    **config,
) -> list[dict]:
    """Train every baseline with every seed; returns one summary row per baseline.

    With ``out_dir`` (new or empty; ``force`` archives a run there), each run writes its own logs
    under ``out_dir/<baseline>/seed<k>/``, and the comparison writes ``summary.json`` and
    ``learning_curves.png``.
    """
    configs = {
        (b, s): TrainConfig(env_id, baseline=b, seed=int(s), **config)
        for b in baselines
        for s in seeds
    }  # every setting checked before the first run starts
    run = None
    if out_dir is not None:
        run = claim_run_folder(out_dir, app="rl-compare", name=env_id, force=force)
        run.start(
            {"env_id": env_id, "baselines": list(baselines), "seeds": list(seeds), **config},
            command=f"scoregrad rl compare {env_id}",
        )
    rows, curves = [], {}
    for b in baselines:
        results, budgets = [], []
        for s in seeds:
            cfg = configs[(b, s)]
            run_dir = run.path / b / f"seed{s}" if run is not None else None
            trainer = Trainer(cfg, run_dir, progress=progress)
            results.append(trainer.train())
            trainer.close()
            budgets.append({"episodes": cfg.episodes, "env_steps": cfg.env_steps})
        curves[b] = [r.returns for r in results]
        rows.append(summarise(results, budgets))
    if run is not None:
        out = run.path
        (out / "summary.json").write_text(json.dumps(rows, indent=2))
        run.update(status="finished", progress=f"{len(baselines)} baselines x {len(seeds)} seeds")
        plot_curves(curves, out / "learning_curves.png", f"{env_id}: REINFORCE baselines")
    return rows
