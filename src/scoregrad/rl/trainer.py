"""Training loop: seeds, progress bar, logs, learning curve, checkpoints that resume exactly.

``Trainer(TrainConfig(env_id="CartPole-v1", baseline="loo"), out_dir="runs/x").train()`` collects
batches of episodes (``scoregrad.rl.rollout``), updates the policy with REINFORCE
(``scoregrad.rl.agent``) and writes under ``out_dir``; with ``batch="steps"`` it collects step
batches (``scoregrad.rl.steps``) and updates with GAE (``scoregrad.rl.gae_agent``) instead.
``TrainConfig.for_env(env_id, ...)`` starts from the shipped defaults (``scoregrad.rl.defaults``).
Files:

* ``episodes.csv``: one row per episode (return, length, cumulative env steps, wall time);
* ``log.jsonl``: one JSON object per update (loss, entropy, gradient norm, mean return, steps/s);
* ``learning_curve.png``: episode returns and their 100-episode moving average;
* ``checkpoint.pt``: everything needed to continue (policy, Adam, baseline incl. its optimiser,
  the torch generator that samples actions, the NumPy generator that seeds the environments, the
  history). ``Trainer.resume(path)`` loads it with ``torch.load(weights_only=True)``; a run
  interrupted at a checkpoint and resumed ends with bit-identical parameters to an uninterrupted
  run with the same seed (the environments are reseeded from the NumPy generator every batch).

Nothing touches torch's or NumPy's global RNG: initialisation happens under ``fork_rng``, actions
are drawn from a private ``torch.Generator``.

>>> from scoregrad.rl import Trainer, TrainConfig
>>> t = Trainer(TrainConfig("CartPole-v1", baseline="loo", episodes=8, seed=0), progress=False)
>>> result = t.train()
>>> result.episodes, len(result.returns)
(8, 8)
"""

from __future__ import annotations

import copy
import csv
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from ..app.checkpoint import CheckpointError, save_checkpoint
from ..app.checkpoint import load_checkpoint as _load
from ..app.config import ResumePolicy, reconcile
from ..app.plotting import new_figure, save_figure
from ..app.runs import RunFolder, claim_run_folder
from ..core import seeded
from ..errors import ScoregradError
from .agent import BASELINE_NAMES, REINFORCE, ValueNet, make_baseline
from .gae_agent import GAEReinforce
from .policies import make_policy
from .rollout import check_env_id, collect, make_envs
from .steps import StepCollector, make_step_envs
from .surrogates import make_surrogate

__all__ = [
    "TrainConfig",
    "Trainer",
    "TrainResult",
    "CheckpointError",
    "solved_at",
    "load_checkpoint",
]

CHECKPOINT_FORMAT = "scoregrad.rl.checkpoint/1"


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in checkpoints).

    ``RESUME`` declares what a resume may do with each setting (``scoregrad.app.config``): the
    budgets may be extended; the settings the saved state was built from are fixed; the others
    change only when asked (``allow_changes``). New settings need a default, so that older
    checkpoints, which lack them, still load.
    """

    RESUME: ClassVar[ResumePolicy] = ResumePolicy(
        budget=("episodes", "env_steps"),
        fixed=(
            "env_id",
            "baseline",
            "hidden",
            "seed",
            "log_std_init",
            "max_steps",
            "ma_decay",
            "value_lr",
            "num_envs",
            "batch",
            "normalize_obs",
            "normalize_reward",
            "state_std",
            "squash",
        ),
        flags={"normalize_advantages": "--normalize", "stop_at": "--stop-at"},
    )
    #: settings that only step batches (``batch="steps"``) use, with their inert values
    STEP_ONLY: ClassVar[dict] = {
        "normalize_obs": False,
        "normalize_reward": False,
        "epochs": 1,
        "minibatches": 1,
        "surrogate": "score",
        "noise_corr": 0.0,
    }

    env_id: str
    baseline: str = "value"
    episodes: int | None = 1000  # budget of training episodes (None: no episode budget)
    batch_episodes: int = 4  # episodes per policy update
    num_envs: int | None = None  # sub-environments (default: batch_episodes)
    gamma: float = 0.99
    lr: float = 2e-2
    hidden: tuple[int, ...] = (64,)
    normalize_advantages: bool = True
    entropy_coef: float = 0.0
    max_grad_norm: float | None = None
    ma_decay: float = 0.9
    value_lr: float = 1e-2
    value_steps: int = 5
    log_std_init: float = 0.0
    max_steps: int | None = None  # per-episode cap (default: the env's time limit)
    stop_at: float | None = None  # stop once the window mean return reaches this
    window: int = 100
    env_steps: int | None = None  # optional budget of environment steps
    seed: int = 0
    device: str = "cpu"
    # step batches (docs/rl.md): n_steps on each of num_envs sub-envs, GAE(λ), normalisation,
    # several gradient steps per batch with a surrogate, policy options
    batch: str = "episodes"  # "episodes" (whole episodes) | "steps"
    n_steps: int = 256  # steps per sub-environment per batch (batch="steps")
    gae_lambda: float = 0.95
    epochs: int = 1  # passes over each batch
    minibatches: int = 1  # minibatches per pass
    surrogate: str = "score"  # score | ppo-clip | v-trace
    clip_range: float = 0.2  # PPO-clip's ε
    rho_bar: float = 1.0  # V-trace's truncation ρ̄
    normalize_obs: bool = False
    normalize_reward: bool = False
    state_std: bool = False  # state-dependent log-std (a second head of the policy)
    squash: str = "clip"  # clip | tanh
    noise_corr: float = 0.0  # AR(1) correlation of the Gaussian policy's noise

    @classmethod
    def for_env(cls, env_id: str, **given) -> TrainConfig:
        """The shipped defaults of ``env_id`` (``scoregrad.rl.defaults``) with ``given`` on top."""
        from .defaults import defaults_for

        return cls(env_id, **{**defaults_for(env_id), **given})

    def __post_init__(self):
        check_env_id(self.env_id)
        self.baseline = BASELINE_NAMES.resolve(self.baseline, option="baseline")
        from .surrogates import SURROGATE_NAMES

        self.surrogate = SURROGATE_NAMES.resolve(self.surrogate, option="surrogate")
        self._check_batch_mode()
        if self.batch_episodes < 1 or (self.episodes is not None and self.episodes < 1):
            raise ScoregradError(
                f"episodes ({self.episodes}) and batch_episodes ({self.batch_episodes}) must be "
                "positive integers. Fix: pass values of at least 1."
            )
        if self.env_steps is not None and self.env_steps < 1:
            raise ScoregradError(f"env_steps must be positive (or None), got {self.env_steps}.")
        if self.baseline == "loo" and self.batch_episodes < 2:
            raise ScoregradError(
                "baseline='loo' needs at least 2 episodes per batch (leave-one-out across "
                "episodes). Fix: batch_episodes >= 2, or baseline='moving-average'/'value'."
            )
        self.hidden = tuple(int(h) for h in self.hidden)

    def _check_batch_mode(self) -> None:
        if self.batch not in ("episodes", "steps"):
            raise ScoregradError(f"batch must be 'episodes' or 'steps', got {self.batch!r}.")
        if self.batch == "episodes":
            used = [k for k, v in self.STEP_ONLY.items() if getattr(self, k) != v]
            if used:
                raise ScoregradError(
                    f"{', '.join(used)} apply to step batches only, not to whole-episode "
                    "batches. Fix: add batch='steps' (--batch steps), or leave them out."
                )
            return
        if self.baseline != "value":
            raise ScoregradError(
                f"step batches use GAE with the learned value as control variate, not the "
                f"{self.baseline!r} baseline. Fix: baseline='value', or batch='episodes'."
            )
        if self.env_steps is None:
            raise ScoregradError(
                "step batches need a budget of env steps. Fix: pass env_steps (--env-steps)."
            )
        if min(self.n_steps, self.epochs, self.minibatches) < 1:
            raise ScoregradError("n_steps, epochs and minibatches must be at least 1.")
        if not 0.0 <= self.gae_lambda <= 1.0:
            raise ScoregradError(f"gae_lambda must lie in [0, 1], got {self.gae_lambda}.")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """From a saved config; settings it lacks (an older version's) take their defaults."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise CheckpointError(
                f"the checkpoint's settings include {', '.join(unknown)}, which this version of "
                "scoregrad does not know: it was written by a newer version. Fix: upgrade "
                "scoregrad to resume it."
            )
        d = dict(d)
        d["baseline"] = BASELINE_NAMES.resolve(d.get("baseline", "value"), note=None)
        return cls(**d)


@dataclass
class TrainResult:
    env_id: str
    baseline: str
    seed: int
    episodes: int
    env_steps: int
    seconds: float
    returns: list[float] = field(repr=False)
    lengths: list[int] = field(repr=False)
    solved_episode: int | None = None
    solved_env_steps: int | None = None
    final_mean: float = float("nan")
    bias_sources: list[str] = field(default_factory=list)  # options that bias the estimate

    @property
    def steps_per_second(self) -> float:
        return self.env_steps / self.seconds if self.seconds > 0 else float("nan")


def solved_at(returns, lengths, threshold: float, window: int = 100):
    """First episode count e with mean(returns[e-window:e]) ≥ threshold, and env steps used by then.

    >>> solved_at([1, 3, 5, 5], [1, 1, 1, 1], threshold=4.5, window=2)
    (4, 4)
    """
    r = np.asarray(returns, dtype=np.float64)
    if threshold is None or len(r) < window:
        return None, None
    c = np.concatenate([[0.0], np.cumsum(r)])
    means = (c[window:] - c[:-window]) / window
    hit = np.nonzero(means >= threshold)[0]
    if len(hit) == 0:
        return None, None
    e = int(hit[0]) + window
    return e, int(np.sum(np.asarray(lengths[:e])))


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a training checkpoint (a file, or a run folder) safely (``weights_only=True``)."""
    return _load(path, format=CHECKPOINT_FORMAT, written_by="`scoregrad rl train`")


def policy_for(config: TrainConfig, envs):
    """The policy a run of ``config`` trains (and ``evaluate`` rebuilds) for ``envs``' spaces."""
    c = config
    return make_policy(
        envs.single_observation_space, envs.single_action_space, c.hidden, c.log_std_init,
        state_std=c.state_std, squash=c.squash, noise_corr=c.noise_corr,
    )  # fmt: skip


def _spaces_signature(envs) -> str:
    return f"{envs.single_observation_space!r} -> {envs.single_action_space!r}"


class Trainer:
    """REINFORCE training on a Gymnasium environment (see the module docstring)."""

    def __init__(
        self,
        config: TrainConfig,
        out_dir: str | os.PathLike | None = None,
        *,
        progress: bool = True,
        checkpoint_every: int = 10,
        force: bool = False,
        run: RunFolder | None = None,
    ):
        """``out_dir`` must be new or empty, or hold a run that ``force`` archives (see
        ``scoregrad.app.runs``); ``run`` is the folder of a run being resumed."""
        self.config = config
        self.progress = progress
        self.checkpoint_every = int(checkpoint_every)
        self.changes: list[dict] = []  # settings changed on resumes (allow_changes)
        c = config
        if run is None and out_dir is not None:  # before any work: refuse to overwrite a run
            run = claim_run_folder(out_dir, app="rl", name=c.env_id, force=force)
            run.start(c.to_dict(), command=f"scoregrad rl train {c.env_id}")
        self.run = run
        self.out_dir = run.path if run is not None else None
        self.device = torch.device(c.device)
        self.steps_mode = c.batch == "steps"
        if self.steps_mode:
            self.envs, self.horizon = make_step_envs(c.env_id, c.num_envs or 1, c.max_steps)
        else:
            num_envs = min(c.num_envs or c.batch_episodes, c.batch_episodes)
            self.envs, self.horizon = make_envs(c.env_id, num_envs, c.max_steps)
        seeds = np.random.SeedSequence(c.seed).generate_state(3)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seeds[1]))
        self.env_rng = np.random.default_rng(int(seeds[2]))
        with seeded(int(seeds[0])):  # initialisation on a forked RNG: the caller's is untouched
            self.policy = policy_for(c, self.envs).to(self.device)
            self._init_steps() if self.steps_mode else self._init_episodes()
        self.returns: list[float] = []
        self.lengths: list[int] = []
        self.log: list[dict] = []
        self.env_steps = 0
        self.iterations = 0
        self.seconds = 0.0
        self.signature = _spaces_signature(self.envs)

    def _init_steps(self) -> None:
        c = self.config
        value = ValueNet(copy.deepcopy(self.policy.encoder), c.hidden).to(self.device)
        self.agent = GAEReinforce(
            self.policy, value,
            make_surrogate(c.surrogate, clip_range=c.clip_range, rho_bar=c.rho_bar),
            gamma=c.gamma, lam=c.gae_lambda, lr=c.lr, value_lr=c.value_lr, epochs=c.epochs,
            minibatches=c.minibatches, normalize_advantages=c.normalize_advantages,
            entropy_coef=c.entropy_coef, max_grad_norm=c.max_grad_norm,
        )  # fmt: skip
        self.collector = StepCollector(
            self.envs, self.env_rng, normalize_obs=c.normalize_obs,
            normalize_reward=c.normalize_reward, gamma=c.gamma, device=self.device,
        )  # fmt: skip

    def _init_episodes(self) -> None:
        c = self.config
        self.collector = None
        baseline = make_baseline(
            c.baseline,
            horizon=self.horizon,
            encoder=self.policy.encoder,
            decay=c.ma_decay,
            value_lr=c.value_lr,
            value_steps=c.value_steps,
            value_hidden=c.hidden,
        )
        if hasattr(baseline, "model"):
            baseline.model.to(self.device)
        self.agent = REINFORCE(
            self.policy,
            baseline,
            gamma=c.gamma,
            lr=c.lr,
            normalize_advantages=c.normalize_advantages,
            entropy_coef=c.entropy_coef,
            max_grad_norm=c.max_grad_norm,
        )

    # -- checkpoints -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "env_id": self.config.env_id,
            "spaces": self.signature,
            "config": self.config.to_dict(),
            "agent": self.agent.state_dict(),
            "torch_generator": self.generator.get_state(),
            "numpy_rng": self.env_rng.bit_generator.state,
            "returns": list(self.returns),
            "lengths": list(self.lengths),
            "log": list(self.log),
            "env_steps": self.env_steps,
            "iterations": self.iterations,
            "seconds": self.seconds,
            "changes": list(self.changes),
            "collector": self.collector.state_dict() if self.collector is not None else None,
        }

    def load_state_dict(self, state: dict) -> None:
        if state["env_id"] != self.config.env_id or state["spaces"] != self.signature:
            raise CheckpointError(
                f"the checkpoint was trained on {state['env_id']} ({state['spaces']}), not on "
                f"{self.config.env_id} ({self.signature}). Fix: use the same environment id, or "
                "start a new run without --resume."
            )
        self.agent.load_state_dict(state["agent"])
        self.generator.set_state(state["torch_generator"])
        self.env_rng.bit_generator.state = state["numpy_rng"]
        self.returns, self.lengths = list(state["returns"]), list(state["lengths"])
        self.log = list(state["log"])
        self.env_steps, self.iterations = int(state["env_steps"]), int(state["iterations"])
        self.seconds = float(state["seconds"])
        self.changes = list(state.get("changes", []))
        if self.collector is not None:
            self.collector.load_state_dict(state["collector"])

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the checkpoint atomically (and the run's progress into run.json)."""
        path = save_checkpoint(
            Path(path) if path is not None else self._path("checkpoint.pt"), self.state_dict()
        )
        if self.run is not None and path.parent == self.run.path:
            self.run.update(progress=self._progress_text())
        return path

    def _progress_text(self) -> str:
        c = self.config
        of = f"/{c.episodes}" if c.episodes is not None else ""
        text = f"{len(self.returns)}{of} episodes, {self.env_steps} env steps"
        return text + (f" of {c.env_steps}" if c.env_steps is not None else "")

    @classmethod
    def resume(
        cls,
        path: str | os.PathLike,
        out_dir: str | os.PathLike | None = None,
        *,
        given: dict | None = None,
        allow_changes: bool = False,
        force: bool = False,
        episodes: int | None = None,
        env_id: str | None = None,
        **kwargs,
    ) -> Trainer:
        """Continue the run saved at ``path`` (its folder, or its checkpoint.pt) as it was saved.

        ``given`` holds settings the caller asks for explicitly (``episodes=``/``env_id=`` are
        short for them). A budget (``episodes``, ``env_steps``) given there extends the run; any
        other setting that differs from the saved one raises ``ConfigChangeError`` naming it,
        unless ``allow_changes`` (then it applies and is logged in the checkpoint and run.json).
        The run continues in its own folder, or in a new ``out_dir`` (a branch of the run).
        """
        state = load_checkpoint(path)
        saved = TrainConfig.from_dict(state["config"]).to_dict()
        given = dict(given or {})
        if episodes is not None:
            given["episodes"] = int(episodes)
        env_id = given.pop("env_id", env_id)
        if env_id is not None and env_id != saved["env_id"]:
            raise CheckpointError(
                f"the checkpoint {path} was trained on {saved['env_id']}, not {env_id}. Fix: "
                f"resume with {saved['env_id']}, or train {env_id} from scratch."
            )
        if "hidden" in given:
            given["hidden"] = [int(h) for h in given["hidden"]]
        if "baseline" in given:
            given["baseline"] = BASELINE_NAMES.resolve(given["baseline"], note=None)
        cfg, changes = reconcile(
            saved, given, TrainConfig.RESUME, allow_changes=allow_changes,
            run=f"the run in {Path(path)}",
        )  # fmt: skip
        done = len(state["returns"])
        if cfg["episodes"] is not None and cfg["episodes"] < done:
            raise ScoregradError(
                f"--episodes {cfg['episodes']} is below the {done} episodes the run in {path} "
                f"has already trained. Fix: give a larger budget to extend it (e.g. --episodes "
                f"{done + saved['episodes']}), or leave --episodes out to keep {saved['episodes']}."
            )
        folder = Path(path) if Path(path).is_dir() else Path(path).parent
        if out_dir is None or Path(out_dir).resolve() == folder.resolve():
            run = RunFolder(folder)
        else:  # resume into another folder: a branch, which must not overwrite a run either
            run = claim_run_folder(out_dir, app="rl", name=cfg["env_id"], force=force)
            run.start(cfg, command=f"scoregrad rl train {cfg['env_id']} (resumed from {path})")
        config = TrainConfig.from_dict(cfg)
        trainer = cls(config, run=run, **kwargs)
        trainer.load_state_dict(state)
        trainer._apply_changes(changes)
        if changes:
            trainer.changes.append({"episode": done, "options": [c.option for c in changes]})
            run.log_changes(changes, config.to_dict())
        return trainer

    def _apply_changes(self, changes) -> None:
        """Settings the optimisers saved with their state are set again after loading it."""
        names = {c.name for c in changes}
        if "lr" in names:
            for g in self.agent.optimizer.param_groups:
                g["lr"] = self.config.lr
        if "value_lr" in names and self.steps_mode:
            for g in self.agent.value_optimizer.param_groups:
                g["lr"] = self.config.value_lr

    # -- logs --------------------------------------------------------------------------------------
    def _path(self, name: str) -> Path:
        if self.out_dir is None:
            raise ValueError("this Trainer has no out_dir; pass a path to save().")
        return self.out_dir / name

    def _rewrite_logs(self) -> None:
        if self.out_dir is None:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self._path("episodes.csv"), "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["episode", "return", "length", "env_steps"])
            steps = 0
            for i, (r, n) in enumerate(zip(self.returns, self.lengths, strict=True), 1):
                steps += n
                w.writerow([i, r, n, steps])
        with open(self._path("log.jsonl"), "w") as fh:
            for row in self.log:
                fh.write(json.dumps(row) + "\n")

    def _append_logs(self, first_episode: int, row: dict) -> None:
        if self.out_dir is None:
            return
        with open(self._path("episodes.csv"), "a", newline="") as fh:
            w = csv.writer(fh)
            steps = sum(self.lengths[:first_episode])
            for i in range(first_episode, len(self.returns)):
                steps += self.lengths[i]
                w.writerow([i + 1, self.returns[i], self.lengths[i], steps])
        with open(self._path("log.jsonl"), "a") as fh:
            fh.write(json.dumps(row) + "\n")

    def plot(self, path: str | os.PathLike | None = None) -> Path:
        """Learning curve: episode returns and their moving average over ``window`` episodes."""
        path = Path(path) if path is not None else self._path("learning_curve.png")
        fig, ax = new_figure(figsize=(7, 4))
        x = np.arange(1, len(self.returns) + 1)
        ax.plot(x, self.returns, lw=0.5, alpha=0.4, label="episode return")
        ax.plot(x, moving_average(self.returns, self.config.window), lw=2, label="moving average")
        ax.set(xlabel="episode", ylabel="return", title=f"{self.config.env_id}: REINFORCE, "
               f"baseline={self.config.baseline}, seed={self.config.seed}")  # fmt: skip
        ax.legend()
        return save_figure(fig, path, dpi=100)

    # -- training ----------------------------------------------------------------------------------
    def _done(self) -> bool:
        c = self.config
        if c.episodes is not None and len(self.returns) >= c.episodes:
            return True
        if c.env_steps is not None and self.env_steps >= c.env_steps:
            return True
        if c.stop_at is not None and len(self.returns) >= c.window:
            return float(np.mean(self.returns[-c.window :])) >= c.stop_at
        return False

    def step(self) -> dict:
        """Collect one batch and update the policy; returns the log row."""
        if self.steps_mode:
            return self._step_steps()
        c = self.config
        n = min(c.batch_episodes, c.episodes - len(self.returns))
        n = max(n, 2 if c.baseline == "loo" else 1)
        seeds = [int(s) for s in self.env_rng.integers(0, 2**31 - 1, size=self.envs.num_envs)]
        t0 = time.perf_counter()
        batch = collect(
            self.envs, self.policy, n, self.horizon, self.generator, seeds, self.device
        ).to(self.device)
        stats = self.agent.update(batch)
        dt = time.perf_counter() - t0
        self.seconds += dt
        self.iterations += 1
        self.env_steps += batch.env_steps
        self.returns.extend(float(r) for r in batch.returns)
        self.lengths.extend(int(x) for x in batch.lengths)
        row = {
            "iteration": self.iterations,
            "episodes": len(self.returns),
            "env_steps": self.env_steps,
            "seconds": round(self.seconds, 4),
            "mean_return": float(batch.returns.mean()),
            "window_mean": float(np.mean(self.returns[-c.window :])),
            "steps_per_s": batch.env_steps / dt if dt > 0 else float("nan"),
            "loss": stats.loss,
            "entropy": stats.entropy,
            "grad_norm": stats.grad_norm,
        }
        self.log.append(row)
        return row

    def _step_steps(self) -> dict:
        c = self.config
        t0 = time.perf_counter()
        k = self.envs.num_envs
        n = min(c.n_steps, -(-(c.env_steps - self.env_steps) // k))  # the last batch fits
        batch = self.collector.collect(self.policy, n, self.generator)
        stats = self.agent.update(batch, self.generator)
        dt = time.perf_counter() - t0
        self.seconds += dt
        self.iterations += 1
        self.env_steps += batch.env_steps
        self.returns.extend(batch.episode_returns)
        self.lengths.extend(batch.episode_lengths)
        recent = self.returns[-c.window :]
        row = {
            "iteration": self.iterations,
            "episodes": len(self.returns),
            "env_steps": self.env_steps,
            "seconds": round(self.seconds, 4),
            "mean_return": float(np.mean(batch.episode_returns)) if batch.episode_returns else None,
            "window_mean": float(np.mean(recent)) if recent else None,
            "steps_per_s": batch.env_steps / dt if dt > 0 else float("nan"),
            "loss": stats.loss,
            "entropy": stats.entropy,
            "grad_norm": stats.grad_norm,
            "value_loss": stats.value_loss,
            "approx_kl": stats.approx_kl,
        }
        self.log.append(row)
        return row

    def bias_sources(self) -> list[str]:
        """The options of this run that bias the gradient estimate (docs/rl.md measures them)."""
        out = self.agent.bias_sources()
        if self.config.normalize_reward:
            out.append("reward normalisation")
        return out

    def progress_bar(self) -> dict:
        """What the progress bar counts: episodes, or env steps when that budget binds first.

        The bar follows the budget that ends the run: with an env-step budget smaller than the
        episodes could take (at the episode cap), it counts steps.
        """
        c = self.config
        if c.env_steps is not None and (
            c.episodes is None or c.env_steps < c.episodes * self.horizon
        ):
            return {
                "total": c.env_steps,
                "initial": min(self.env_steps, c.env_steps),
                "unit": "step",
            }
        return {"total": c.episodes, "initial": len(self.returns), "unit": "ep"}

    def train(self) -> TrainResult:
        """Train until the episode (or env-step) budget is spent or ``stop_at`` is reached."""
        from tqdm.auto import tqdm

        self._rewrite_logs()
        spec = self.progress_bar()
        bar = tqdm(
            **spec, disable=not self.progress, desc=f"{self.config.env_id} [{self.config.baseline}]"
        )
        if self.run is not None:
            self.run.update(status="running", progress=self._progress_text())
        status = "interrupted"
        try:
            while not self._done():
                first, steps0 = len(self.returns), self.env_steps
                row = self.step()
                self._append_logs(first, row)
                if spec["unit"] == "step":
                    bar.update(min(self.env_steps, spec["total"]) - min(steps0, spec["total"]))
                else:
                    bar.update(len(self.returns) - first)
                bar.set_postfix(
                    ret=f"{row['window_mean']:.1f}" if row["window_mean"] is not None else "-",
                    steps=self.env_steps,
                    sps=f"{self.env_steps / max(self.seconds, 1e-9):.0f}",
                )
                if self.out_dir is not None and self.iterations % self.checkpoint_every == 0:
                    self.save()
            status = "finished"
        finally:
            bar.close()
            if self.run is not None:  # progress stays that of the last checkpoint
                self.run.update(status=status)
        if self.out_dir is not None:
            self.save()
            self.plot()
        return self.result()

    def result(self) -> TrainResult:
        c = self.config
        threshold = c.stop_at
        if threshold is None:
            threshold = getattr(__import__("gymnasium").spec(c.env_id), "reward_threshold", None)
        ep, steps = solved_at(self.returns, self.lengths, threshold, c.window)
        tail = self.returns[-c.window :]
        return TrainResult(
            env_id=c.env_id,
            baseline=c.baseline,
            seed=c.seed,
            episodes=len(self.returns),
            env_steps=self.env_steps,
            seconds=self.seconds,
            returns=list(self.returns),
            lengths=list(self.lengths),
            solved_episode=ep,
            solved_env_steps=steps,
            final_mean=float(np.mean(tail)) if tail else math.nan,
            bias_sources=self.bias_sources(),
        )

    def close(self) -> None:
        self.envs.close()


def moving_average(x, window: int) -> np.ndarray:
    """Trailing mean over up to ``window`` values (shorter at the start)."""
    x = np.asarray(x, dtype=np.float64)
    c = np.concatenate([[0.0], np.cumsum(x)])
    i = np.arange(1, len(x) + 1)
    lo = np.maximum(0, i - window)
    return (c[i] - c[lo]) / (i - lo)
