"""The training loop for variational inference: maximise an ELBO surrogate with ``torch.optim``.

``fit(objective, module, steps)`` calls ``objective(step)`` (a scalar surrogate, usually from an
``scoregrad.vi.elbo`` estimator, whose value is the ELBO estimate), steps the optimiser on its
negative, and logs:

* ``history["elbo"]``: the ELBO estimate of every step (the objective's value);
* ``history["grad_var_step"]``, ``history["grad_var"]``: every ``grad_var_every`` steps, the
  variance of the gradient estimator at the current parameters, averaged over parameter elements,
  from ``grad_var_repeats`` independent gradient draws (mean_j Var[ĝ_j]; Mohamed et al. 2020 §8
  plot the same quantity along training). The probes run on a forked RNG and with the
  estimator's state restored afterwards, so logging never changes the training trajectory;
* ``history["lr"]``: the learning rate of every step; ``history["seconds"]``: wall time.

Checkpoints (``checkpoint=path``, every ``checkpoint_every`` steps and at the end) hold the module,
optimiser, scheduler, estimator state, history, the RNG state and the run's settings
(``config``), written atomically and read back with ``torch.load(weights_only=True)``
(``scoregrad.app.checkpoint``): a run that is interrupted and restarted with the same arguments
continues exactly where its last checkpoint left off, and ends with the same parameters as an
uninterrupted run. A resume follows ``scoregrad.app.config``: a larger ``steps`` extends the run
(the learning-rate schedule is rebuilt for the new budget from the current step on, so a cosine
schedule keeps decaying instead of climbing back up); any other setting that differs from the
saved one raises ``ConfigChangeError`` naming it, unless ``allow_changes`` (then it applies and
is recorded in the checkpoint's ``changes``).

With a ``seed`` the loop runs on a forked RNG (``torch.random.fork_rng``): the caller's global RNG
is neither seeded nor advanced.

>>> import torch
>>> from scoregrad.vi import MeanFieldNormal, PathwiseELBO, fit
>>> guide = MeanFieldNormal(2)
>>> log_joint = lambda z: torch.distributions.Normal(3.0, 0.5).log_prob(z).sum(-1)
>>> res = fit(lambda step: PathwiseELBO()(log_joint, guide, n=16), guide, steps=300, lr=0.05,
...           progress=False, seed=0)
>>> [round(float(v), 1) for v in guide.loc]
[3.0, 3.0]
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..app.checkpoint import load_checkpoint, save_checkpoint
from ..app.config import ResumePolicy, reconcile
from ..app.plotting import new_figure, save_figure
from ..errors import ScoregradError

__all__ = ["fit", "FitResult", "make_optimizer", "make_schedule", "plot_history", "plot_comparison"]


@dataclass
class FitResult:
    """What ``fit`` returns: the history dict, the step reached, wall time, and whether it resumed
    from a checkpoint (``resumed_from`` = that checkpoint's step, else None)."""

    history: dict[str, list] = field(default_factory=dict)
    steps: int = 0
    seconds: float = 0.0
    resumed_from: int | None = None
    config: dict = field(default_factory=dict)
    changes: list = field(default_factory=list)

    @property
    def final_elbo(self) -> float:
        """Mean ELBO estimate over the last 10% of the steps (at least one)."""
        e = self.history.get("elbo", [])
        if not e:
            return float("nan")
        k = max(1, len(e) // 10)
        return float(sum(e[-k:]) / k)


def make_optimizer(name: str | Callable, params, lr: float) -> torch.optim.Optimizer:
    """'sgd', 'adam' or a callable ``params, lr -> Optimizer``."""
    if callable(name):
        return name(params, lr)
    table = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    if name not in table:
        raise ScoregradError(
            f"unknown optimizer {name!r}; use one of {sorted(table)} or pass a callable "
            "(params, lr) -> torch.optim.Optimizer."
        )
    return table[name](params, lr=lr)


def schedule_factor(name: str | None, step: int, steps: int) -> float:
    """The learning-rate multiplier of a named schedule at ``step`` of a ``steps``-step budget:
    'constant' 1, 'cosine' ½(1 + cos(π s/S)) (0 at S), 'linear' 1 - s/S, 'exp:<γ>' γ^s."""
    steps = max(1, steps)
    if name in (None, "constant"):
        return 1.0
    if name == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(step, steps) / steps))
    if name == "linear":
        return max(0.0, 1.0 - step / steps)
    if isinstance(name, str) and name.startswith("exp:"):
        try:
            return float(name[4:]) ** step
        except ValueError:
            pass
    raise ScoregradError(
        f"unknown learning-rate schedule {name!r}; use 'constant', 'cosine', 'linear', "
        "'exp:<gamma>' or a callable optimizer -> torch.optim.lr_scheduler.LRScheduler."
    )


def make_schedule(name: str | Callable | None, optimizer, steps: int):
    """Learning-rate schedule: None/'constant', 'cosine' (to 0 over ``steps``), 'linear',
    'exp:<gamma>' (lr·γ^step), or a callable ``optimizer -> LRScheduler``.

    Named schedules are closed-form functions of (step, budget) (``schedule_factor``), so a
    resume with a larger budget rebuilds the schedule for it from the current step on."""
    if callable(name):
        return name(optimizer)
    schedule_factor(name, 0, steps)  # rejects unknown names
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: schedule_factor(name, s, steps))


#: what a resume may do with fit's settings (``scoregrad.app.config``): the step budget may be
#: extended; the learning rate and the logging and clipping options may change when allowed;
#: everything else (the model, estimator, seed, schedule, samples ...) is fixed
RESUME = ResumePolicy(
    budget=("steps",),
    changeable=("lr", "max_grad_norm", "grad_var_every", "grad_var_repeats", "time_budget"),
    flags={"n": "--samples"},
)


def _setting(v):
    return v if isinstance(v, (str, int, float, bool, type(None), list, tuple)) else repr(v)


def _states(stateful: Sequence) -> list:
    return [copy.deepcopy(s.state_dict()) for s in stateful]


def _flat_grad(params: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat(
        [
            (p.grad if p.grad is not None else torch.zeros_like(p)).detach().reshape(-1)
            for p in params
        ]
    )


def gradient_variance(
    objective: Callable[[int], torch.Tensor],
    params: list[torch.Tensor],
    step: int,
    repeats: int,
    stateful: Sequence = (),
    seed: int = 0,
    measure: Sequence[torch.Tensor] | None = None,
) -> float:
    """Mean over parameter elements of the variance of the gradient estimator at the current
    parameters, from ``repeats`` independent calls of ``objective(step)`` (unbiased sample
    variance). Runs on a forked RNG and restores ``stateful`` objects, so nothing else changes."""
    saved = _states(stateful)
    grads = []
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed * 1_000_003 + step)
        for _ in range(repeats):
            for p in params:
                p.grad = None
            (-objective(step)).backward()
            grads.append(_flat_grad(list(measure) if measure is not None else params))
    for s, st in zip(stateful, saved, strict=True):
        s.load_state_dict(st)
    for p in params:
        p.grad = None
    g = torch.stack(grads).double()
    return float(g.var(0, unbiased=True).mean())


def _save(path: Path, payload: dict) -> None:
    save_checkpoint(path, payload)  # atomic: a crash mid-save never leaves a broken checkpoint


def fit(
    objective: Callable[[int], torch.Tensor],
    module: nn.Module,
    steps: int,
    *,
    optimizer: str | Callable = "adam",
    lr: float = 1e-2,
    schedule: str | Callable | None = None,
    stateful: Sequence = (),
    seed: int | None = 0,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 1000,
    resume: bool = True,
    grad_var_every: int = 0,
    grad_var_repeats: int = 20,
    grad_var_params: Sequence[torch.Tensor] | None = None,
    time_budget: float | None = None,
    progress: bool = True,
    log_every: int = 50,
    callback: Callable[[int, dict], None] | None = None,
    max_grad_norm: float | None = None,
    config: dict | None = None,
    allow_changes: bool = False,
) -> FitResult:
    """Maximise ``objective(step)`` over ``module``'s parameters for ``steps`` steps.

    Args:
        objective: step -> scalar surrogate (value = ELBO estimate, gradient = its estimator).
        module: every parameter to train (guide, decoder, ...), as one ``nn.Module``.
        steps: total optimiser steps (a resumed run counts the steps it already did).
        optimizer: 'adam', 'sgd', 'adamw' or a callable (params, lr) -> Optimizer.
        lr: learning rate. schedule: see ``make_schedule``.
        stateful: objects with ``state_dict``/``load_state_dict`` (estimators with baselines)
            saved in checkpoints and restored around gradient-variance probes.
        seed: seeds a forked copy of torch's RNG for the run (the caller's RNG is untouched);
            None: draw from (and advance) the caller's RNG, and a resume is not exact.
        checkpoint: file to write every ``checkpoint_every`` steps and at the end; if it exists
            and ``resume``, training continues from it (see the module docstring).
        grad_var_every: probe the gradient variance every this many steps (0: never), with
            ``grad_var_repeats`` draws, over ``grad_var_params`` (default: all parameters; e.g.
            only the encoder's, whose gradient is the one the estimator makes).
        time_budget: stop (and checkpoint) once this many seconds of this call have passed; the
            result's ``steps`` says how far it got.
        progress: show a tqdm progress bar with the running ELBO.
        callback: called as callback(step, history) after every step.
        max_grad_norm: clip the gradient norm (None: no clipping).
        config: the caller's settings (model, estimator, samples ...), saved with fit's own in
            the checkpoint and compared on resume; ``allow_changes`` accepts changed ones.
    """
    if seed is None:
        return _fit(objective, module, steps, **_fit_args(locals()))
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        return _fit(objective, module, steps, **_fit_args(locals()))


def _fit_args(local: dict) -> dict:
    return {k: v for k, v in local.items() if k not in ("objective", "module", "steps")}


def _fit(
    objective, module, steps, *, optimizer, lr, schedule, stateful, seed, checkpoint,
    checkpoint_every, resume, grad_var_every, grad_var_repeats, grad_var_params, time_budget,
    progress, log_every, callback, max_grad_norm, config, allow_changes,
) -> FitResult:  # fmt: skip
    if steps < 0:
        raise ScoregradError(f"steps must be >= 0, got {steps}.")
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise ScoregradError(
            "the module has no parameters that require grad, so there is nothing to fit."
        )
    settings = {
        **{k: _setting(v) for k, v in (config or {}).items()},
        "steps": int(steps), "optimizer": _setting(optimizer), "lr": float(lr),
        "schedule": _setting(schedule), "seed": seed, "max_grad_norm": max_grad_norm,
    }  # fmt: skip
    changes: list = []
    history: dict[str, list] = {"elbo": [], "lr": [], "grad_var_step": [], "grad_var": []}
    start_step, resumed_from, elapsed0 = 0, None, 0.0
    path = Path(checkpoint) if checkpoint is not None else None
    state = None
    if path is not None and path.exists() and resume:
        state = load_checkpoint(path, written_by="scoregrad.vi.fit")
        if not isinstance(state, dict) or "step" not in state:
            raise ScoregradError(
                f"could not resume from checkpoint {path}: it holds no training state. Fix: pass "
                "a checkpoint written by scoregrad.vi.fit, or another path to start afresh."
            )
        if "config" in state:  # checkpoints from before 0.2 hold no settings to compare
            settings, accepted = reconcile(
                state["config"], settings, RESUME, allow_changes=allow_changes,
                run=f"the run saved in {path}",
            )  # fmt: skip
            changes = list(state.get("changes", [])) + [
                {"step": int(state["step"]), "options": [c.option for c in accepted]}
            ] * bool(accepted)
            lr = settings["lr"]
            if settings["steps"] != steps:  # a smaller budget given: the saved one stands
                steps = int(settings["steps"])
    opt = make_optimizer(optimizer, params, lr)
    sched = make_schedule(schedule, opt, steps)
    if state is not None:
        try:
            module.load_state_dict(state["module"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            for s, st in zip(stateful, state["stateful"], strict=True):
                s.load_state_dict(st)
            if seed is not None:
                torch.set_rng_state(state["rng"])  # the forked copy (see fit)
        except (KeyError, RuntimeError, ValueError, EOFError, TypeError) as e:
            raise ScoregradError(
                f"could not resume from checkpoint {path}: {e}. It was written by a different "
                "model or estimator set-up, or is damaged. Fix: rerun with the same arguments, "
                "or start afresh with another checkpoint path (--out)."
            ) from e
        history = {k: list(v) for k, v in state["history"].items()}
        start_step = resumed_from = int(state["step"])
        elapsed0 = float(state.get("seconds", 0.0))
        if not callable(schedule):  # the schedule (and lr) for this budget, from this step on
            for g in opt.param_groups:
                g["lr"] = lr * schedule_factor(schedule, start_step, steps)
            sched.base_lrs = [lr for _ in opt.param_groups]

    def payload(step, seconds):
        return {
            "step": step,
            "module": module.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "stateful": [s.state_dict() for s in stateful],
            "rng": torch.get_rng_state(),
            "history": history,
            "seconds": seconds,
            "config": settings,
            "changes": changes,
        }

    bar = None
    if progress and steps > start_step:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=start_step, desc="vi", dynamic_ncols=True)
    t0 = time.perf_counter()
    step = start_step
    try:
        for step in range(start_step, steps):
            opt.zero_grad(set_to_none=True)
            try:
                surrogate = objective(step)
            except ScoregradError:
                raise
            except ValueError as e:
                if step == start_step:
                    raise
                raise ScoregradError(
                    f"step {step}: the objective failed after {step} good steps ({e}); the "
                    "optimiser has most likely diverged to invalid parameters. Fix: lower the "
                    "learning rate, use a variance-reduced estimator, or clip gradients."
                ) from e
            if surrogate.dim() != 0:
                raise ScoregradError(
                    f"the objective returned shape {tuple(surrogate.shape)}; it must return a "
                    "scalar ELBO surrogate (sum or mean over data points)."
                )
            if grad_var_every and step % grad_var_every == 0:
                # after the step's own objective call (so lazily built modules, e.g. a RELAX
                # control network, exist before their state is saved), before its backward
                history["grad_var_step"].append(step)
                history["grad_var"].append(
                    gradient_variance(
                        objective,
                        params,
                        step,
                        grad_var_repeats,
                        stateful,
                        seed=seed or 0,
                        measure=grad_var_params,
                    )
                )
            (-surrogate).backward()
            bad = [p for p in params if p.grad is not None and not torch.isfinite(p.grad).all()]
            if bad or not math.isfinite(float(surrogate.detach())):
                raise ScoregradError(
                    f"step {step}: the ELBO estimate ({float(surrogate.detach()):.4g}) or its "
                    "gradient is not finite; the optimiser diverged. Fix: lower the learning rate, "
                    "use a variance-reduced estimator (baseline or control variate), clip "
                    "gradients "
                    "(max_grad_norm), or initialise the guide closer to the prior."
                )
            if max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            history["lr"].append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
            if not all(torch.isfinite(p).all() for p in params):
                raise ScoregradError(
                    f"step {step}: a parameter became NaN or infinite after the optimiser step; "
                    "the optimiser diverged. Fix: lower the learning rate, use a variance-reduced "
                    "estimator (baseline or control variate), or clip gradients (max_grad_norm)."
                )
            history["elbo"].append(float(surrogate.detach()))
            if callback is not None:
                callback(step, history)
            if bar is not None:
                bar.update(1)
                if step % log_every == 0:
                    k = min(len(history["elbo"]), log_every)
                    bar.set_postfix(elbo=f"{sum(history['elbo'][-k:]) / k:.3f}")
            if path is not None and (step + 1) % checkpoint_every == 0 and step + 1 < steps:
                _save(path, payload(step + 1, elapsed0 + time.perf_counter() - t0))
            if time_budget is not None and time.perf_counter() - t0 > time_budget:
                step += 1
                break
        else:
            step = steps
    finally:
        if bar is not None:
            bar.close()
    seconds = elapsed0 + time.perf_counter() - t0
    step = max(step, start_step)
    if path is not None and step > start_step:
        _save(path, payload(step, seconds))
    history["seconds"] = [seconds]
    return FitResult(
        history=history, steps=step, seconds=seconds, resumed_from=resumed_from,
        config=settings, changes=changes,
    )  # fmt: skip


def _smooth(v: list[float], w: int) -> list[float]:
    if w <= 1 or len(v) < w:
        return list(v)
    t = torch.tensor(v, dtype=torch.float64)
    c = torch.cat([torch.zeros(1, dtype=torch.float64), t.cumsum(0)])
    return ((c[w:] - c[:-w]) / w).tolist()


def plot_history(history: dict, path: str | os.PathLike, title: str = "") -> Path:
    """Write a PNG with the ELBO curve (smoothed) and, if logged, the gradient variance."""
    return plot_comparison({title or "fit": history}, path, title=title)


def plot_comparison(
    histories: dict[str, dict],
    path: str | os.PathLike,
    title: str = "",
    elbo_floor: float | None = None,
) -> Path:
    """One PNG with ELBO curves (left) and gradient variance along training (right, log scale)
    for several runs, e.g. one per estimator."""
    has_var = any(h.get("grad_var") for h in histories.values())
    fig, axes = new_figure(figsize=(11 if has_var else 6, 4), ncols=2 if has_var else 1)
    axes = list(axes) if has_var else [axes]
    for name, h in histories.items():
        e = h.get("elbo", [])
        w = max(1, len(e) // 100)
        s = _smooth(e, w)
        axes[0].plot(range(w - 1, w - 1 + len(s)), s, label=name)
        if has_var and h.get("grad_var"):
            axes[1].semilogy(h["grad_var_step"], h["grad_var"], label=name)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("ELBO (moving average)")
    if elbo_floor is not None:
        axes[0].set_ylim(bottom=elbo_floor)
    axes[0].legend(fontsize=8)
    if has_var:
        axes[1].set_xlabel("step")
        axes[1].set_ylabel("gradient variance (mean over elements)")
        axes[1].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, dpi=110)
