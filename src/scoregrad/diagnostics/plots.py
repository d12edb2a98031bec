"""The diagnostics' figures, drawn on ``matplotlib.figure.Figure`` with the Agg canvas: the
caller's backend and pyplot state are never touched (inline figures in a notebook keep working).

* ``plot_comparison(cmp, path)``: for each parameter component, two panels, variance per sample
  and variance × time (the work-normalised variance, independent of n), as horizontal bars on log
  axes that start at the axis floor. Estimators are sorted, lowest (best) at the top, and
  labelled on their bars, not in a legend; an exactly zero variance (an exact estimator) is a
  diamond at the floor labelled "0"; biased estimators are hatched and say so; every estimator
  keeps one colour, distinct from the others, in every panel.
* ``plot_variance_sweep(sweep, path)``: log variance against a swept problem parameter.
* ``plot_trajectory(traj, path)``: the exact loss and log variance along an optimisation.

>>> import scoregrad as sg, tempfile, pathlib
>>> from scoregrad.diagnostics import compare
>>> cmp = compare(sg.problems.get("bernoulli_toy"), ["score_function", "disarm"], n=64,
...               repeats=2, seed=0)
>>> with tempfile.TemporaryDirectory() as d:
...     png = plot_comparison(cmp, pathlib.Path(d) / "c.png")
...     png.stat().st_size > 5000
True
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = [
    "palette",
    "comparison_figure",
    "plot_comparison",
    "plot_variance_sweep",
    "plot_trajectory",
]

# tab10 and two more that none of them resembles: one colour per estimator up to 12
_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#000000", "#b8860b",
)  # fmt: skip


def palette(n: int) -> list:
    """n distinct colours (beyond 12, evenly spaced along the 'turbo' colormap)."""
    if n <= len(_COLOURS):
        return list(_COLOURS[:n])
    from matplotlib import colormaps

    return [colormaps["turbo"](x) for x in np.linspace(0.05, 0.95, n)]


#: parameter components drawn by ``plot_comparison`` (the rest are named in the title)
MAX_COMPONENTS = 8


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


def _bars(ax, entries, colours, xlabel):
    """Horizontal bars of positive values on a log axis, starting at its floor; entries are
    (name, value, biased), drawn sorted (lowest at the top); zero and non-finite values are
    marked at the floor instead of vanishing."""
    entries = sorted(entries, key=lambda e: math.inf if not math.isfinite(e[1]) else e[1])
    pos = [v for _, v, _ in entries if math.isfinite(v) and v > 0]
    lo = 10 ** math.floor(math.log10(min(pos))) / 10 if pos else 1e-3
    # room on the right for the value labels: a share of the decades shown
    hi = max(pos) * 10 ** max(0.6, 0.15 * math.log10(max(pos) / lo)) if pos else 1.0
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    for y, (name, v, biased) in enumerate(entries):
        colour = colours[name]
        if math.isfinite(v) and v > 0:
            ax.barh(
                y, v - lo, left=lo, height=0.7, color=colour, alpha=0.85,
                hatch="///" if biased else None, edgecolor="white" if biased else colour,
                linewidth=0,
            )  # fmt: skip
            ax.text(v * 1.15, y, f"{v:.3g}", va="center", fontsize=7)
        else:
            label = "0 (exact)" if v == 0 else "n/a"
            at_floor = ax.get_yaxis_transform()  # x in axes fractions, y in data
            ax.plot([0.015], [y], marker="D", ms=6, color=colour, transform=at_floor)
            ax.text(0.035, y, label, va="center", fontsize=7, transform=at_floor)
    ax.set_yticks(range(len(entries)))
    ax.set_yticklabels([n + (" (biased)" if b else "") for n, _, b in entries], fontsize=8)
    for tick, (name, _, _) in zip(ax.get_yticklabels(), entries, strict=True):
        tick.set_color(colours[name])
    ax.set_ylim(len(entries) - 0.5, -0.5)  # lowest at the top
    ax.set_xlabel(xlabel, fontsize=8)
    ax.grid(axis="x", which="major", alpha=0.3)
    ax.tick_params(axis="x", labelsize=7)


def plot_comparison(cmp, path) -> Path:
    """``comparison_figure(cmp)`` saved as a PNG at ``path``; returns the path."""
    return _save(comparison_figure(cmp), path)


def comparison_figure(cmp):
    """Variance per sample and variance × time per estimator, one row of two panels per
    parameter component (see the module docstring), as a ``matplotlib.figure.Figure``."""
    names = list(dict.fromkeys(r["estimator"] for r in cmp.rows))
    colours = dict(zip(names, palette(len(names)), strict=True))
    comps = list(dict.fromkeys((r["param"], r["index"]) for r in cmp.rows))
    # components whose gradient every estimator gets exactly (unused parameters) say nothing
    exact = [c for c in comps if all(r["variance"] == 0 for r in cmp.rows
                                     if (r["param"], r["index"]) == c)]  # fmt: skip
    shown = [c for c in comps if c not in exact] or comps[:1]
    more = shown[MAX_COMPONENTS:]
    comps = shown[:MAX_COMPONENTS]
    fig = _figure(11.0, max(2.6, (0.28 * len(names) + 1.0) * max(1, len(comps))))
    axes = fig.subplots(max(1, len(comps)), 2, squeeze=False)
    for row, (param, index) in zip(axes, comps, strict=False):
        rows = [r for r in cmp.rows if (r["param"], r["index"]) == (param, index)]
        label = f"∂/∂{param}" + (f"[{index}]" if index != "" else "")
        for ax, key, what in (
            (row[0], "variance", "variance per sample"),
            (row[1], "work_variance", "variance × seconds (work-normalised)"),
        ):
            entries = [(r["estimator"], float(r[key]), bool(r["biased"])) for r in rows]
            _bars(ax, entries, colours, f"{what} of {label}, log scale")
    title = f"{cmp.problem}: n = {cmp.n}, {cmp.repeats} repeats"
    if cmp.skipped:
        title += f"  (not applicable: {', '.join(cmp.skipped)})"
    name = lambda c: c[0] + (f"[{c[1]}]" if c[1] != "" else "")  # noqa: E731
    hidden = [c for c in exact if c not in comps]
    if hidden:
        title += f"\nzero variance for every estimator, not drawn: {', '.join(map(name, hidden))}"
    if more:
        title += f"\nnot drawn (at most {MAX_COMPONENTS} panels): {', '.join(map(name, more))}"
    fig.suptitle(title, fontsize=10)
    return fig


def plot_variance_sweep(
    sweep: dict, path, *, xlabel: str = "k", title: str = "", exact: dict | None = None
) -> Path:
    """One panel per parameter: log-variance against the swept value, one line per estimator
    (dashed: exact, when given as {estimator: {param: [values]}}); the legend sits outside."""
    keys = list(dict.fromkeys(k for d in sweep["variance"].values() for k in d))
    labels = list(sweep["variance"])
    colours = dict(zip(labels, palette(len(labels)), strict=True))
    fig = _figure(4.5 * len(keys) + 1.8, 3.6)
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    xs = sweep["values"]

    def positive(ys):  # a zero variance (an exact estimator, an unused element) has no log
        return [y if y > 0 else math.nan for y in ys]

    for ax, key in zip(axes, keys, strict=True):
        drawn = False
        for label, d in sweep["variance"].items():
            if key in d:
                ys = positive(d[key])
                drawn = drawn or any(math.isfinite(y) for y in ys)
                ax.plot(xs, ys, "o-", ms=3, color=colours[label], label=label)
            if exact and label in exact and key in exact[label]:
                ax.plot(xs, positive(exact[label][key]), "--", color=colours[label], lw=1)
        if drawn:
            ax.set_yscale("log")
        else:
            ax.text(0.5, 0.5, "variance 0 at every value", ha="center", transform=ax.transAxes)
            ax.set_yticks([])
            if len(xs) > 1 and min(xs) < max(xs):
                ax.set_xlim(min(xs), max(xs))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"variance of ∂/∂{key} (one sample)")
        ax.grid(alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper", fontsize=7)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_trajectory(traj: dict, path, *, title: str = "", by: str = "step") -> Path:
    """Two panels: exact loss and log-variance of the gradient, per estimator, against ``by``
    ("step" or "evals"); the legend sits outside."""
    colours = dict(zip(traj, palette(len(traj)), strict=True))
    fig = _figure(11.5, 3.8)
    a, b = fig.subplots(1, 2)
    for label, rec in traj.items():
        x = rec[by]
        a.plot(x, rec["loss"], label=label, color=colours[label])
        v = np.asarray(rec["variance"], dtype=float)
        with np.errstate(divide="ignore"):
            b.plot(x, np.log10(np.where(v > 0, v, np.nan)), lw=0.8, color=colours[label])
    a.set_xlabel(by)
    a.set_ylabel("loss E[f]")
    b.set_xlabel(by)
    b.set_ylabel("log10 variance of the gradient (one sample)")
    for ax in (a, b):
        ax.grid(alpha=0.3)
    fig.legend(*a.get_legend_handles_labels(), loc="outside right upper", fontsize=7)
    if title:
        fig.suptitle(title)
    return _save(fig, path)
