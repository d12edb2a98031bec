"""Figures without pyplot: ``matplotlib.figure.Figure`` on an Agg canvas, so drawing a plot never
changes the caller's backend or pyplot's list of open figures (inline figures in a notebook keep
working).

>>> import tempfile, pathlib
>>> fig, ax = new_figure(figsize=(3, 2))
>>> _ = ax.plot([0, 1], [1, 0])
>>> save_figure(fig, pathlib.Path(tempfile.mkdtemp()) / "line.png").suffix
'.png'
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["new_figure", "save_figure"]


def new_figure(*, figsize=(7, 4), nrows: int = 1, ncols: int = 1, **subplots):
    """A figure with its own Agg canvas and its axes (``Figure.subplots``' return value)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, **subplots)


def save_figure(fig, path: str | os.PathLike, *, dpi: int = 100) -> Path:
    """Lay out and write ``fig``; the file appears complete or not at all (temporary + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png")
    os.replace(tmp, path)
    return path
