"""The comparison chart shows what a reader needs, and no plot touches matplotlib's global state.

The old chart hung bars down from 0 on a log axis, dropped zero-variance estimators (DisARM and
measure-valued on the RELAX toy), repeated colours and covered the bars with a legend.
"""

import math
import sys

import matplotlib
import pytest

import scoregrad as sg
from scoregrad.diagnostics import compare, trajectory, variance_sweep
from scoregrad.diagnostics.plots import (
    comparison_figure,
    palette,
    plot_comparison,
    plot_trajectory,
    plot_variance_sweep,
)

NAMES = ["score_function", "rloo", "disarm", "mvd", "arm", "gumbel_softmax", "straight_through"]


@pytest.fixture(scope="module")
def toy():
    return compare(sg.problems.get("bernoulli_toy"), NAMES, n=200, repeats=2, seed=0)


def _panels(fig):
    return [ax for ax in fig.axes if ax.get_yticklabels()]


def test_every_estimator_is_shown_sorted_and_labelled_on_the_bars(toy):
    fig = comparison_figure(toy)
    panels = _panels(fig)
    assert len(panels) == 2  # variance per sample, variance × time
    for ax, key in zip(panels, ("variance", "work_variance"), strict=True):
        assert ax.get_xscale() == "log" and ax.get_legend() is None
        labels = [t.get_text().removesuffix(" (biased)") for t in ax.get_yticklabels()]
        assert sorted(labels) == sorted(NAMES)  # zero-variance ones included
        values = {r["estimator"]: r[key] for r in toy.rows}
        shown = [values[n] for n in labels]
        assert shown == sorted(shown)  # lowest first (drawn at the top)
        texts = [t.get_text() for t in ax.texts]
        zeros = [n for n in NAMES if values[n] == 0]
        assert {"disarm", "mvd"} <= set(zeros)
        assert texts.count("0 (exact)") == len(zeros)
        floor = ax.get_xlim()[0]
        assert floor > 0
        for bar in ax.patches:  # bars start at the axis floor, never at 0
            assert math.isclose(bar.get_x(), floor)


def test_biased_estimators_hatched_and_colours_distinct(toy):
    ax = _panels(comparison_figure(toy))[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert "gumbel_softmax (biased)" in labels and "straight_through (biased)" in labels
    colours = [t.get_color() for t in ax.get_yticklabels()]
    assert len(set(colours)) == len(colours)
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert len(hatched) == 2
    assert len(set(palette(12))) == 12 and len(set(map(str, palette(20)))) == 20


def test_plots_leave_matplotlib_global_state_alone(toy, tmp_path):
    backend = matplotlib.get_backend()
    had_pyplot = "matplotlib.pyplot" in sys.modules
    figs = sys.modules["matplotlib.pyplot"].get_fignums() if had_pyplot else None
    assert plot_comparison(toy, tmp_path / "c.png").stat().st_size > 10_000
    prob = sg.problems.get("normal_square")
    sw = variance_sweep(
        lambda k: sg.problems.get("normal_square", k=k), [0.0, 1.0], ["score_function"], n=64
    )
    assert plot_variance_sweep(sw, tmp_path / "s.png").exists()
    tr = trajectory(prob, {"sf": (sg.ScoreFunction(), 16)}, steps=3)
    assert plot_trajectory(tr, tmp_path / "t.png").exists()
    assert matplotlib.get_backend() == backend
    assert ("matplotlib.pyplot" in sys.modules) == had_pyplot
    if had_pyplot:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == figs


def _row(est, param, index, var):
    return dict(estimator=est, param=param, index=index, variance=var, work_variance=var * 1e-3,
                biased=False)  # fmt: skip


def test_components_exact_for_every_estimator_are_named_not_drawn():
    from scoregrad.diagnostics import Comparison
    from scoregrad.diagnostics.plots import MAX_COMPONENTS

    rows = [_row(e, "w", str(i), 0.0 if i == 1 else 1.0 + i) for i in range(12) for e in "ab"]
    fig = comparison_figure(Comparison("synthetic", 10, 2, rows))
    assert len(_panels(fig)) == 2 * MAX_COMPONENTS
    title = fig.get_suptitle()
    assert "not drawn: w[1]" in title and "w[9], w[10], w[11]" in title
    only_zero = [_row(e, "w", "", 0.0) for e in "ab"]
    fig = comparison_figure(Comparison("zero", 10, 2, only_zero))
    assert len(_panels(fig)) == 2 and "not drawn" not in fig.get_suptitle()
    assert [t.get_text() for t in _panels(fig)[0].texts] == ["0 (exact)"] * 2


def test_variance_sweep_plot_with_zero_variance_components(tmp_path):
    """A component whose variance is 0 at every value (an exact estimator, an element f never
    reaches) gets a labelled empty panel, not a log-scale warning; zeros beside positive values
    are left out of the log axis."""
    import warnings

    sweep = {
        "values": [1.0, 2.0],
        "variance": {
            "a": {"x": [0.0, 0.0], "y": [1.0, 2.0]},
            "b": {"x": [0.0, 0.0], "y": [0.5, 0.0]},
        },
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert plot_variance_sweep(sweep, tmp_path / "zero.png").exists()
